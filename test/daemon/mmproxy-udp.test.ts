// The daemon's mmproxy listeners with a `protocol: udp` entry, on loopback and without sessions (no
// privileges needed): LOCAL headers and refused datagrams are counted, a reload keeps listening and
// keeps the counters, a refused change (the port taken) changes nothing, removing the entry frees
// the port. The relay between real peers is in test/dataplane/mmproxy/udp-relay.root.test.ts.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import type { MmproxySettings } from '../../src/core/config/sections/mmproxy.js';
import { encodeProxyHeaderV2 } from '../../src/core/proxy-protocol/v2.js';
import { MmproxyListeners } from '../../src/daemon/mmproxy.js';
import { SocketApi } from '../../src/sys/socket.js';

const LOCAL = Buffer.concat([encodeProxyHeaderV2({ command: 'local', transport: 'unspec' }), Buffer.from('health')]);
const BAD = Buffer.from('not a PROXY header');

async function freePort(): Promise<{ socket: dgram.Socket; port: number }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port };
}

async function send(port: number, ...datagrams: Buffer[]): Promise<void> {
  const socket = dgram.createSocket('udp4');
  for (const d of datagrams) await new Promise<void>((resolve, reject) => socket.send(d, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  socket.close();
}

describe('mmproxy listeners: protocol udp in the daemon', () => {
  let port: number;
  let listeners: MmproxyListeners;
  const settings = (change: Partial<MmproxySettings> = {}): MmproxySettings => ({
    name: 'dns',
    protocol: 'udp',
    listen: [{ address: '127.0.0.1', port }],
    allowedSources: ['127.0.0.0/8'],
    backend4: undefined,
    backend6: undefined,
    headerTimeoutMs: 1000,
    maxHeaderBytes: 512,
    healthTarget: undefined,
    upstreamMark: 2,
    connectTimeoutMs: 2000,
    idleTimeoutMs: 0,
    maxSessions: 16,
    ...change,
  });
  /** The counters once `ok` holds (datagrams are read on the loop's next turn), at most 5 s. */
  const countersWhen = async (ok: (c: ReturnType<MmproxyListeners['counters']>[string]) => boolean) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const c = listeners.counters()['dns'];
      if (c && ok(c)) return c;
      if (Date.now() > deadline) assert.fail(`counters not as expected within 5 s: ${JSON.stringify(c)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  before(async () => {
    const probe = await freePort();
    port = probe.port;
    probe.socket.close();
    listeners = new MmproxyListeners({ sockets: new SocketApi(), emit: () => undefined, flowEvents: false });
  });
  after(async () => {
    await listeners.stop();
  });

  it('counts a LOCAL header (the health check) and a bad header, relays neither', async () => {
    await listeners.apply([settings()]);
    await send(port, LOCAL, BAD);
    const c = await countersWhen((x) => x.headersLocal === 1 && x.rejected['bad-signature'] === 1);
    assert.equal(c.headersProxy, 0);
    assert.equal(c.active, 0);
    assert.deepEqual(listeners.status().listeners.map((l) => l.name), ['dns']);
  });

  it('a reload keeps listening and keeps the counters; a refused change changes nothing', async () => {
    await listeners.apply([settings({ maxSessions: 32 })]);
    await send(port, LOCAL);
    await countersWhen((x) => x.headersLocal === 2 && x.rejected['bad-signature'] === 1);
    // Another port, taken by a socket without SO_REUSEADDR: the bind is refused, the old entry stays.
    const taken = await freePort();
    try {
      await assert.rejects(listeners.apply([settings({ listen: [{ address: '127.0.0.1', port: taken.port }] })]), /EADDRINUSE|in use/i);
    } finally {
      taken.socket.close();
    }
    await send(port, LOCAL);
    await countersWhen((x) => x.headersLocal === 3);
  });

  it('removing the entry frees its port', async () => {
    await listeners.apply([]);
    assert.deepEqual(listeners.counters(), {});
    const again = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', resolve);
    });
    again.close();
  });
});

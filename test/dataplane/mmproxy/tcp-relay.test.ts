// The mmproxy listener's start on loopback (no privileges needed): a taken port is refused with the
// address in the message and nothing stays open; a connection from a source not allowed is reset
// before a byte is read, counted and reported. On each engine: stream and splice (engine threads).
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import type { ProxyEvent } from '../../../src/dataplane/events.js';
import { MmproxySpliceRelay } from '../../../src/dataplane/mmproxy/splice-relay.js';
import { endpointKey, MmproxyTcpRelay, type MmproxyTcpConfig, type MmproxyTcpDeps } from '../../../src/dataplane/mmproxy/tcp-relay.js';
import { SocketApi } from '../../../src/sys/socket.js';
import { until } from '../../helpers/until.js';

const config = (port: number, allowedSources: string[] = ['127.0.0.0/8']): MmproxyTcpConfig => ({
  name: 't',
  listen: [{ address: '127.0.0.1', port }],
  allowedSources,
  headerTimeoutMs: 1000,
  maxHeaderBytes: 256,
  upstreamMark: 0,
  connectTimeoutMs: 1000,
  idleTimeoutMs: 0,
});

const ENGINES = {
  stream: (c: MmproxyTcpConfig, d: MmproxyTcpDeps) => new MmproxyTcpRelay(c, d),
  splice: (c: MmproxyTcpConfig, d: MmproxyTcpDeps) => new MmproxySpliceRelay(c, { ...d, threads: 2 }),
};

for (const [engine, create] of Object.entries(ENGINES)) {
  describe(`mmproxy TCP listener, ${engine} engine (loopback)`, () => {
    it('refuses a taken port, naming it, and leaves nothing listening', async () => {
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = (taken.address() as net.AddressInfo).port;
      const relay = create(config(port), { sockets: new SocketApi(), emit: () => undefined, flowEvents: false });
      await assert.rejects(relay.start(), new RegExp(`mmproxy t: cannot listen on 127\\.0\\.0\\.1:${port}`));
      taken.close();
    });

    it('resets a source not allowed before reading, counts it and reports it once', async () => {
      const events: ProxyEvent[] = [];
      const relay = create(config(0, ['192.0.2.0/24']), { sockets: new SocketApi(), emit: (e) => events.push(e), flowEvents: true });
      const [local] = await relay.start();
      const how = await new Promise<string>((resolve) => {
        const c = net.connect(local!.port, '127.0.0.1', () => c.write('PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n'));
        c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        c.on('end', () => resolve('end'));
      });
      await relay.stop();
      assert.equal(how, 'ECONNRESET');
      assert.deepEqual(relay.counters.rejected, { 'source-not-allowed': 1 });
      assert.deepEqual(
        events.filter((e) => e.type === 'mmproxy.reject').map((e) => e.type === 'mmproxy.reject' && e.reason),
        ['source-not-allowed'],
      );
    });

    it('without flowEvents: a source not allowed is counted, not reported; a bad header is reported (the balancer is misconfigured)', async () => {
      const events: ProxyEvent[] = [];
      const relay = create(config(0, ['127.0.0.1/32']), { sockets: new SocketApi(), emit: (e) => events.push(e), flowEvents: false });
      const [local] = await relay.start();
      const refused = (localAddress: string, bytes: string): Promise<void> =>
        new Promise((resolve) => {
          const c = net.connect({ port: local!.port, host: '127.0.0.1', localAddress }, () => c.write(bytes));
          c.on('error', () => resolve());
          c.on('close', () => resolve());
        });
      await refused('127.0.0.2', 'PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n');
      await refused('127.0.0.1', 'GET / HTTP/1.0\r\n\r\n');
      // The splice engine's threads report their counters once a second.
      await until(() => Promise.resolve({ ...relay.counters.rejected }), (r) => r['bad-signature'] === 1 && r['source-not-allowed'] === 1, 5000, 'both refusals counted');
      relay.setFlowEvents(true);
      await refused('127.0.0.2', 'PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n');
      await until(() => Promise.resolve(events.filter((e) => e.type === 'mmproxy.reject').length), (n) => n === 2, 5000, 'the second refusal reported');
      await relay.stop();
      assert.deepEqual(
        events.filter((e) => e.type === 'mmproxy.reject').map((e) => e.type === 'mmproxy.reject' && e.reason),
        ['bad-signature', 'source-not-allowed'],
      );
    });
  });
}

describe('MmproxyTcpRelay (loopback)', () => {
  it('a connection reset before its callback (no peer address any more) is counted, never fatal', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const relay = new MmproxyTcpRelay(config(port), { sockets: new SocketApi(), emit: () => undefined, flowEvents: false });
    relay.adopt(new Map([[endpointKey({ address: '127.0.0.1', port }), server]]));
    // What Node hands over when the balancer reset the connection between accept and the callback.
    server.emit('connection', new net.Socket());
    assert.deepEqual(relay.counters.rejected, { 'closed-before-header': 1 });
    assert.equal(relay.connections, 0);
    await relay.stop();
  });
});

// The SOCKS5 UDP association's control side against scripted servers on loopback (no privileges:
// no mark): what it sends, replies in pieces, 0.0.0.0 as the relay, credentials, and each way a
// server can fail it.
import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { parseUpstreamProxy } from '../../../src/core/upstream/proxy-url.js';
import { MAX_QUEUED_BYTES, MAX_QUEUED_DATAGRAMS, Socks5Association, type AssociationStep } from '../../../src/dataplane/udp/socks5-association.js';
import type { Epoll } from '../../../src/sys/epoll.js';
import { SocketApi } from '../../../src/sys/socket.js';

const api = new SocketApi();
const IPV4_ZERO = [1, 0, 0, 0, 0];

/** A server that answers each chunk it receives with the next of `script` (split into pieces when asked). */
async function scriptedServer(script: ((received: Buffer) => Buffer | 'close')[], pieces = false): Promise<{ server: net.Server; port: number; received: Buffer[]; closeClient(): void }> {
  const received: Buffer[] = [];
  let client: net.Socket | undefined;
  const server = net.createServer((socket) => {
    client = socket;
    let step = 0;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      const answer = script[step++]?.(chunk);
      if (answer === undefined) return;
      if (answer === 'close') return void socket.end();
      if (!pieces) return void socket.write(answer);
      // One byte at a time, each its own segment.
      let i = 0;
      const next = (): void => {
        if (i >= answer.length || socket.destroyed) return;
        socket.write(answer.subarray(i, ++i), () => setTimeout(next, 2));
      };
      next();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port, received, closeClient: () => client?.destroy() };
}

const servers: net.Server[] = [];
const epolls: Epoll[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const e of epolls.splice(0)) e.close();
});

/** Drive the association from its epoll until it says something other than wait (at most 5 s). */
async function drive(a: Socks5Association, epoll: Epoll): Promise<AssociationStep> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const n = epoll.wait(0);
    for (let i = 0; i < n; i++) {
      const step = a.onEvents(epoll.readyEvents(i));
      if (step.kind !== 'wait') return step;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return { kind: 'wait' };
}

async function associate(url: (port: number) => string, script: ((received: Buffer) => Buffer | 'close')[], pieces = false) {
  const s = await scriptedServer(script, pieces);
  servers.push(s.server);
  const epoll = api.epoll(8);
  epolls.push(epoll);
  const a = Socks5Association.open(api, epoll, parseUpstreamProxy(url(s.port)), { nowMs: Date.now() });
  const step = await drive(a, epoll);
  return { a, step, epoll, ...s };
}

const plain = (port: number): string => `socks5://127.0.0.1:${port}`;
const reply = (rep: number, ...address: number[]): Buffer => Buffer.from([5, rep, 0, ...address]);

describe('Socks5Association', () => {
  it('greets, asks UDP ASSOCIATE for 0.0.0.0:0, and takes a relay of 0.0.0.0 as the proxy\'s own address; replies may come a byte at a time', async () => {
    const { a, step, received } = await associate(plain, [() => Buffer.of(5, 0), () => reply(0, ...IPV4_ZERO, 0x13, 0x88)], true);
    assert.deepEqual(step, { kind: 'ready', relay: { family: 4, address: '127.0.0.1', port: 5000 } });
    assert.equal(a.state, 'ready');
    assert.deepEqual(received.map((b) => [...b]), [[5, 1, 0], [5, 3, 0, ...IPV4_ZERO, 0, 0]]);
    api.close(a.controlFd);
  });

  it('sends RFC 1929 credentials when the outbound has them, and keeps a relay address as given', async () => {
    const { a, step, received } = await associate((port) => `socks5://alice:s3cret@127.0.0.1:${port}`, [() => Buffer.of(5, 2), () => Buffer.of(1, 0), () => reply(0, 1, 127, 0, 0, 2, 0x17, 0x70)]);
    assert.deepEqual(step, { kind: 'ready', relay: { family: 4, address: '127.0.0.2', port: 6000 } });
    assert.deepEqual([...(received[1] ?? [])], [1, 5, ...Buffer.from('alice'), 6, ...Buffer.from('s3cret')]);
    api.close(a.controlFd);
  });

  const failures: [string, (port: number) => string, ((received: Buffer) => Buffer | 'close')[], AssociationStep][] = [
    ['REP=7 (command not supported)', plain, [() => Buffer.of(5, 0), () => reply(7, ...IPV4_ZERO, 0, 0)], { kind: 'failed', reason: 'socks5-refused', detail: 'socks5-command-not-supported' }],
    ['garbage', plain, [() => Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')], { kind: 'failed', reason: 'socks5-protocol', detail: 'socks5-protocol' }],
    ['a wrong password', (port) => `socks5://alice:wrong@127.0.0.1:${port}`, [() => Buffer.of(5, 2), () => Buffer.of(1, 1)], { kind: 'failed', reason: 'socks5-auth-failed', detail: 'socks5-auth-failed' }],
    ['a server that wants credentials we do not have', plain, [() => Buffer.of(5, 0xff)], { kind: 'failed', reason: 'socks5-auth-failed', detail: 'socks5-auth-required' }],
    ['a relay given by name', plain, [() => Buffer.of(5, 0), () => Buffer.from([5, 0, 0, 3, 5, ...Buffer.from('relay'), 0x13, 0x88])], { kind: 'failed', reason: 'socks5-protocol', detail: 'relay named relay: names are not resolved' }],
    ['a relay port of 0', plain, [() => Buffer.of(5, 0), () => reply(0, 1, 127, 0, 0, 2, 0, 0)], { kind: 'failed', reason: 'socks5-protocol', detail: 'relay port 0' }],
    ['a close before the reply', plain, [() => Buffer.of(5, 0), () => 'close'], { kind: 'failed', reason: 'socks5-control-closed', detail: 'closed before the UDP ASSOCIATE reply' }],
  ];
  for (const [what, url, script, expected] of failures) {
    it(`fails on ${what}`, async () => {
      const { a, step } = await associate(url, script);
      assert.deepEqual(step, expected);
      api.close(a.controlFd);
    });
  }

  it('ends when the control connection closes after the association is up', async () => {
    const up = await associate(plain, [() => Buffer.of(5, 0), () => reply(0, ...IPV4_ZERO, 0x13, 0x88)]);
    const { a, step, epoll } = up;
    assert.equal(step.kind, 'ready');
    up.closeClient();
    assert.deepEqual(await drive(a, epoll), { kind: 'failed', reason: 'socks5-control-closed', detail: 'closed by the proxy' });
    api.close(a.controlFd);
  });

  it('fails when nothing listens on the proxy\'s port', async () => {
    const s = await scriptedServer([]);
    const { port } = s;
    await new Promise((r) => s.server.close(r));
    const epoll = api.epoll(8);
    epolls.push(epoll);
    const a = Socks5Association.open(api, epoll, parseUpstreamProxy(plain(port)), { nowMs: Date.now() });
    assert.deepEqual(await drive(a, epoll), { kind: 'failed', reason: 'socks5-connect-failed', detail: 'ECONNREFUSED' });
    api.close(a.controlFd);
  });

  it('holds datagrams while it is set up, bounded in count and bytes', async () => {
    const s = await scriptedServer([]);
    servers.push(s.server);
    const epoll = api.epoll(8);
    epolls.push(epoll);
    const a = Socks5Association.open(api, epoll, parseUpstreamProxy(plain(s.port)), { nowMs: 1000, timeoutMs: 250 });
    assert.equal(a.deadlineMs, 1250);
    for (let i = 0; i < MAX_QUEUED_DATAGRAMS; i++) assert.ok(a.hold(Buffer.alloc(10)));
    assert.equal(a.hold(Buffer.alloc(10)), false, 'past the count');
    assert.equal(a.takeHeld().length, MAX_QUEUED_DATAGRAMS);
    assert.equal(a.held, 0);
    assert.ok(a.hold(Buffer.alloc(MAX_QUEUED_BYTES - 1)));
    assert.equal(a.hold(Buffer.alloc(2)), false, 'past the bytes');
    assert.ok(a.hold(Buffer.alloc(1)));
    api.close(a.controlFd);
  });
});

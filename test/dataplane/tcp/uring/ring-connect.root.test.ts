// The ring connector (both uring engines' outgoing socket: the TPROXY upstream, mmproxy's backend)
// on loopback, as root (IP_TRANSPARENT and SO_MARK need CAP_NET_ADMIN; no rule or route changes):
// the socket the ring set up is bound to the client's address and port (a foreign-looking
// 127.0.0.0/8 address), transparent, marked, TCP_NODELAY and SO_LINGER {1, 0}; the client's port
// taken falls back to a port the kernel picks; a pair ended while its chain is in flight leaves
// its socket to be closed at the chain's end.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as C from '../../../../src/core/net/constants.js';
import { encodeSockaddr, type Endpoint } from '../../../../src/core/net/sockaddr.js';
import { probeRingSockets } from '../../../../src/dataplane/tcp/uring/ring-probe.js';
import { RingConnector, type RingConnecting } from '../../../../src/dataplane/tcp/uring/ring-connect.js';
import { upstreamSetup } from '../../../../src/dataplane/tcp/uring/upstream-setup.js';
import { hostIoUringSupport, IoUring } from '../../../../src/sys/io-uring.js';
import { loadLibc } from '../../../../src/sys/libc.js';
import { SocketApi } from '../../../../src/sys/socket.js';
import { loopbackListener } from '../../../helpers/ring-pairs.js';

const MARK = 0x5a5a;
const CLIENT_ADDRESS = '127.0.0.77';

interface Pair extends RingConnecting {
  readonly client: Endpoint;
}

describe('the ring connector: the outgoing socket set up through the ring (root, loopback)', { skip: hostIoUringSupport().available ? false : 'io_uring unavailable here' }, () => {
  const libc = loadLibc();
  const api = new SocketApi(libc);
  let ring: IoUring;
  let listener: { readonly fd: number; readonly endpoint: Endpoint };
  let connector: RingConnector<Pair>;
  const connected = new Map<number, number>();
  const failed = new Map<number, string>();
  let fallbacks = 0;
  let nextId = 1;

  before(() => {
    ring = new IoUring(64);
    const support = probeRingSockets(ring, libc, api, { bind: true, kind: 99 });
    assert.ok(support.sockets, support.why);
    listener = loopbackListener(api);
    connector = new RingConnector<Pair>(ring, libc, api, {
      mark: MARK,
      ttl: undefined,
      connectTimeoutMs: 2000,
      setup: (pair) => upstreamSetup(pair.client, { kind: 'transparent' }, { dscp: false, ttl: false }, pair.portTaken, false),
      connected: (pair, res) => connected.set(pair.id, res),
      failed: (pair, errno) => failed.set(pair.id, errno),
      portFallback: () => fallbacks++,
    });
  });

  after(() => {
    ring.close();
    connector.closeOrphans();
    libc.close(listener.fd);
  });

  const pairFrom = (port: number): Pair => ({
    id: nextId++, ufd: -1, pending: 0, sockaddr: encodeSockaddr(listener.endpoint), dscp: undefined, portTaken: false, setupValues: undefined, chain: false, setupErrno: 0,
    client: { family: 4, address: CLIENT_ADDRESS, port },
  });

  /** Loop turns until `done` (the connector's CQEs to it; a pair gone: `gone`). */
  function turns(done: () => boolean, live: (id: number) => Pair | undefined): void {
    for (let i = 0; i < 50 && !done(); i++) {
      ring.submit(1, 100);
      const c = ring.completion;
      while (ring.next()) {
        const pair = live(c.id);
        if (RingConnector.quiet(c.kind)) continue;
        if (pair) assert.ok(connector.complete(c.kind, pair, c.res), `kind ${c.kind} is the connector's`);
        else connector.gone(c.kind, c.id);
      }
    }
  }

  /** A port nothing holds on CLIENT_ADDRESS now. */
  function freePort(): number {
    const fd = api.open({ family: 4, transport: 'tcp', transparent: true });
    api.bind(fd, { family: 4, address: CLIENT_ADDRESS, port: 0 });
    const port = api.localEndpoint(fd).port;
    libc.close(fd);
    return port;
  }

  it("binds the client's address and port, transparent and marked, with TCP_NODELAY and SO_LINGER {1, 0}, before its connect", () => {
    const port = freePort();
    const pair = pairFrom(port);
    connector.open(pair);
    assert.equal(pair.chain, true);
    turns(() => connected.has(pair.id), (id) => (id === pair.id ? pair : undefined));
    assert.equal(connected.get(pair.id), 0, 'connected');
    assert.equal(pair.pending, 0);
    assert.equal(pair.chain, false);
    try {
      assert.deepEqual(api.localEndpoint(pair.ufd), { family: 4, address: CLIENT_ADDRESS, port });
      assert.deepEqual(api.remoteEndpoint(pair.ufd), listener.endpoint);
      assert.equal(api.getInt(pair.ufd, C.SOL_SOCKET, C.SO_MARK), MARK);
      assert.equal(api.getInt(pair.ufd, C.SOL_IP, C.IP_TRANSPARENT), 1);
      assert.equal(api.getInt(pair.ufd, C.IPPROTO_TCP, C.TCP_NODELAY), 1);
      const linger = Buffer.alloc(8);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(8, 0);
      assert.equal(libc.getsockopt(pair.ufd, C.SOL_SOCKET, C.SO_LINGER, linger, length), 0);
      assert.deepEqual([linger.readInt32LE(0), linger.readInt32LE(4)], [1, 0]);
    } finally {
      api.resetClose(pair.ufd);
    }
  });

  it('chains queued past the ring\'s room (submitted part way, bind slots used again): each socket bound to its own client', () => {
    // 64 SQEs, 7 a chain here (5 options, bind, connect; its timeout): 20 chains fill the ring three times over.
    const fd = api.open({ family: 4, transport: 'tcp', nonBlocking: false });
    api.bind(fd, { family: 4, address: '127.0.0.1', port: 0 });
    api.listen(fd, 64);
    const sockaddr = encodeSockaddr(api.localEndpoint(fd));
    const pairs = Array.from({ length: 20 }, (_, i) => ({ ...pairFrom(0), sockaddr, client: { family: 4 as const, address: `127.0.0.${100 + i}`, port: 42000 + i } }));
    for (const pair of pairs) connector.open(pair);
    const byId = new Map(pairs.map((p) => [p.id, p]));
    turns(() => pairs.every((p) => connected.has(p.id)), (id) => byId.get(id));
    try {
      for (const pair of pairs) {
        assert.equal(connected.get(pair.id), 0, `pair ${pair.id} connected`);
        assert.deepEqual(api.localEndpoint(pair.ufd), pair.client, `pair ${pair.id} bound to its own client`);
      }
    } finally {
      for (const pair of pairs) if (pair.ufd >= 0) api.resetClose(pair.ufd);
      libc.close(fd);
    }
  });

  it("the client's port taken here: once more from its address with a port the kernel picks", () => {
    // A listener on the client's address and port: binding it again fails even with SO_REUSEADDR.
    const holder = api.open({ family: 4, transport: 'tcp', transparent: true, reuseAddress: true });
    api.bind(holder, { family: 4, address: CLIENT_ADDRESS, port: 0 });
    api.listen(holder, 1);
    const port = api.localEndpoint(holder).port;
    const pair = pairFrom(port);
    const before = fallbacks;
    try {
      connector.open(pair);
      turns(() => connected.has(pair.id), (id) => (id === pair.id ? pair : undefined));
      assert.equal(connected.get(pair.id), 0, 'connected');
      assert.equal(fallbacks, before + 1, 'one port fallback');
      assert.equal(pair.portTaken, true);
      const local = api.localEndpoint(pair.ufd);
      assert.equal(local.address, CLIENT_ADDRESS);
      assert.notEqual(local.port, port);
      assert.equal(api.getInt(pair.ufd, C.SOL_SOCKET, C.SO_MARK), MARK);
      api.resetClose(pair.ufd);
    } finally {
      libc.close(holder);
    }
  });

  it('a pair ended while its chain is in flight: its socket is closed at the chain end, never reused by it', () => {
    const pair = pairFrom(freePort());
    connector.open(pair);
    assert.equal(connector.release(pair), true, 'the socket is left to the connector');
    assert.equal(connector.orphaned, 1);
    turns(() => connector.orphaned === 0, () => undefined);
    assert.equal(connector.orphaned, 0, 'closed at the chain end');
    assert.equal(connected.has(pair.id), false, 'no connect reported for a pair gone');
    assert.equal(failed.size, 0);
  });
});

// The uring engine of the UDP loop on loopback sockets (no rules, no traffic beyond loopback):
// multishot recvmsg into provided buffers, sends queued until the next turn, buffers recycled.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import type { Endpoint } from '../../src/core/net/sockaddr.js';
import { hostIoUringSupport, releaseAbandonedRing } from '../../src/sys/io-uring.js';
import { SocketApi } from '../../src/sys/socket.js';
import { UringDatagramIo } from '../../src/sys/uring-datagram-io.js';

const support = hostIoUringSupport();
const LOOPBACK = '127.0.0.1';

async function sender(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, LOOPBACK, r));
  return s;
}

const send = (s: dgram.Socket, text: string, port: number): Promise<void> => new Promise<void>((r) => s.send(text, port, LOOPBACK, () => r()));

describe('UDP uring engine on loopback (root)', { skip: support.available ? false : support.why }, () => {
  const api = new SocketApi();
  const opened: number[] = [];
  const open = (): { fd: number; local: Endpoint } => {
    const fd = api.open({ family: 4, transport: 'udp' });
    opened.push(fd);
    api.bind(fd, { family: 4, address: LOOPBACK, port: 0 });
    return { fd, local: api.localEndpoint(fd) };
  };
  const close = (fd: number): void => {
    opened.splice(opened.indexOf(fd), 1);
    api.close(fd);
  };
  let senders: dgram.Socket[] = [];
  before(async () => {
    senders = await Promise.all([0, 1, 2].map(() => sender()));
  });
  after(() => {
    for (const s of senders) s.close();
    for (const fd of opened) api.close(fd);
  });

  it('receives a burst with each source, and sends each datagram back to its source on the next turn', async () => {
    const io = new UringDatagramIo(api.epoll(4), { maxDatagramBytes: 2048, buffers: 16, entries: 16 });
    try {
      const { fd, local } = open();
      io.watch(fd);
      assert.equal(io.wait(0), 0, 'armed, nothing came');
      const echoes = senders.map((s) => new Promise<string>((resolve) => s.once('message', (m) => resolve(m.toString()))));
      for (const [i, s] of senders.entries()) await send(s, `datagram ${i}`, local.port);
      assert.equal(io.wait(2000), 1);
      assert.equal(io.readyFd(0), fd);
      assert.equal(io.receive(fd), 3);
      for (let i = 0; i < 3; i++) {
        assert.equal(io.slot(i).toString(), `datagram ${i}`);
        assert.equal(io.source(i).port, senders[i]?.address().port);
        assert.equal(io.sourceIs(i, io.pin(io.source(i)).sockaddr), true);
        assert.equal(io.sourceIs(i, io.pin({ ...io.source(i), port: 1 }).sockaddr), false);
        assert.equal(io.truncated(i), false);
        assert.equal(io.originalDestination(i), undefined, 'no IP_RECVORIGDSTADDR asked for');
      }
      assert.equal(io.receive(fd), 0, 'taken: 0, not an error');
      assert.equal(io.send(fd, 0, 3, 'source'), 3, 'queued');
      const waitsBefore = io.waits;
      io.wait(0);
      assert.equal(io.waits, waitsBefore + 1, 'one io_uring_enter submitted the three sends');
      assert.deepEqual(await Promise.all(echoes), ['datagram 0', 'datagram 1', 'datagram 2']);
      io.forget(fd);
      close(fd);
    } finally {
      io.close();
    }
  });

  it('takes more datagrams than it has buffers over several turns, in order, none lost (the receive ends when buffers run out and is armed again)', async () => {
    const io = new UringDatagramIo(api.epoll(4), { maxDatagramBytes: 2048, buffers: 4, entries: 16 });
    try {
      const { fd, local } = open();
      io.watch(fd);
      io.wait(0);
      const s = senders[0]!;
      for (let i = 0; i < 10; i++) await send(s, `d${i}`, local.port);
      const got: string[] = [];
      for (let turn = 0; turn < 20 && got.length < 10; turn++) {
        const ready = io.wait(200);
        for (let r = 0; r < ready; r++) {
          const n = io.receive(io.readyFd(r));
          assert.ok(n <= 4, `at most the 4 buffers per turn, got ${n}`);
          for (let i = 0; i < n; i++) got.push(io.slot(i).toString());
        }
      }
      assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `d${i}`));
      io.forget(fd);
      close(fd);
    } finally {
      io.close();
    }
  });

  it('a forgotten socket\'s datagrams never show up under a new socket with the same descriptor number', async () => {
    const io = new UringDatagramIo(api.epoll(4), { maxDatagramBytes: 2048, buffers: 16, entries: 16 });
    try {
      const a = open();
      io.watch(a.fd);
      io.wait(0); // its multishot receive is in the kernel
      await send(senders[0]!, 'to the old socket', a.local.port);
      io.forget(a.fd);
      close(a.fd);
      const b = open();
      assert.equal(b.fd, a.fd, 'the number is reused (lowest free descriptor)');
      io.watch(b.fd);
      await send(senders[1]!, 'to the new socket', b.local.port);
      let seen: string[] = [];
      for (let turn = 0; turn < 5 && seen.length === 0; turn++) {
        const ready = io.wait(200);
        for (let r = 0; r < ready; r++) {
          const n = io.receive(io.readyFd(r));
          seen = [...seen, ...Array.from({ length: Math.max(0, n) }, (_, i) => io.slot(i).toString())];
        }
      }
      assert.deepEqual(seen, ['to the new socket']);
      io.forget(b.fd);
      close(b.fd);
    } finally {
      io.close();
    }
  });

  it('a forgotten and closed socket is gone from the kernel before the next turn: its address binds again at once, and its datagrams reach the new socket', async () => {
    // A session's reply socket closed at idle expiry, and the client's next datagram: with the
    // cancelled receive still holding the old socket (DEFER_TASKRUN task work not yet run), that
    // datagram went to the old socket and was lost.
    const io = new UringDatagramIo(api.epoll(4), { maxDatagramBytes: 2048, buffers: 16, entries: 16 });
    try {
      const a = open();
      io.watch(a.fd);
      io.wait(0); // its multishot receive is in the kernel
      io.forget(a.fd);
      close(a.fd);
      // No turn in between. Without SO_REUSEADDR the bind fails (EADDRINUSE) while the old socket lives.
      const fd = api.open({ family: 4, transport: 'udp' });
      opened.push(fd);
      api.bind(fd, a.local);
      io.watch(fd);
      io.wait(0);
      await send(senders[0]!, 'to the address again', a.local.port);
      let seen: string[] = [];
      for (let turn = 0; turn < 5 && seen.length === 0; turn++) {
        const ready = io.wait(200);
        for (let r = 0; r < ready; r++) {
          const n = io.receive(io.readyFd(r));
          seen = [...seen, ...Array.from({ length: Math.max(0, n) }, (_, i) => io.slot(i).toString())];
        }
      }
      assert.deepEqual(seen, ['to the address again']);
      io.forget(fd);
      close(fd);
    } finally {
      io.close();
    }
  });

  it('a ring abandoned with a receive pending holds its closed socket until it is torn down from its resources (releaseAbandonedRing)', async () => {
    // What the UDP relay does for a loop terminated after the stop timeout: the socket's
    // descriptor closed without the engine knowing, then the ring released from another owner.
    const io = new UringDatagramIo(api.epoll(4), { maxDatagramBytes: 2048, buffers: 16, entries: 16 });
    const a = open();
    io.watch(a.fd);
    io.wait(0); // its multishot receive is in the kernel
    close(a.fd);
    const bindAgain = (): number => {
      const fd = api.open({ family: 4, transport: 'udp' });
      try {
        api.bind(fd, a.local);
      } catch (error) {
        api.close(fd);
        throw error;
      }
      opened.push(fd);
      return fd;
    };
    assert.throws(bindAgain, /EADDRINUSE/, 'the ring\'s receive keeps the closed socket bound');
    const { ring, epollFd } = io.resources();
    assert.ok(ring.mappings.some((m) => m.kernelWrites), 'the buffers are among the mappings');
    assert.deepEqual(releaseAbandonedRing(ring), []);
    api.close(epollFd);
    // The kernel frees the ring (and the requests' references) in the background.
    let fd = -1;
    for (let i = 0; i < 40 && fd < 0; i++) {
      try {
        fd = bindAgain();
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.ok(fd >= 0, 'the address is free again: the socket is gone from the kernel');
    close(fd);
  });

  it('reports a queued send that fails (EPIPE after shutdown) on a later turn, and a receive error as -errno (ECONNREFUSED)', async () => {
    const io = new UringDatagramIo(api.epoll(4), { maxDatagramBytes: 2048, buffers: 16, entries: 16 });
    const failures: [number, number, number][] = [];
    io.onSendFailed = (fd, errno, count) => void failures.push([fd, errno, count]);
    try {
      const r = open();
      io.watch(r.fd);
      io.wait(0);
      await send(senders[0]!, 'payload', r.local.port);
      assert.equal(io.wait(2000), 1);
      assert.equal(io.receive(r.fd), 1);
      // x: connected to a port nobody holds; its first send brings ICMP port unreachable back.
      const x = open();
      const gone = open();
      const gonePort = gone.local.port;
      close(gone.fd);
      api.connect(x.fd, { family: 4, address: LOOPBACK, port: gonePort });
      io.watch(x.fd);
      // w: shut down for writing: its sends fail with EPIPE.
      const w = open();
      api.connect(w.fd, r.local);
      api.shutdown(w.fd, 1);
      io.watch(w.fd);
      assert.equal(io.send(x.fd, 0, 1, null), 1);
      assert.equal(io.send(w.fd, 0, 1, null), 1);
      let refused: number | undefined;
      for (let turn = 0; turn < 5 && (refused === undefined || failures.length === 0); turn++) {
        const ready = io.wait(200);
        for (let i = 0; i < ready; i++) if (io.readyFd(i) === x.fd) refused = io.receive(x.fd);
      }
      assert.deepEqual(failures, [[w.fd, 32, 1]], 'EPIPE on w, reported once');
      assert.equal(refused, -111, 'ECONNREFUSED on x');
      for (const fd of [r.fd, x.fd, w.fd]) {
        io.forget(fd);
        close(fd);
      }
    } finally {
      io.close();
    }
  });
});

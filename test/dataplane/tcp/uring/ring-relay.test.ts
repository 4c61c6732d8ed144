// The ring relay on loopback socket pairs (no privileges), driven one loop turn at a time: the
// server's FIN right behind its last bytes crosses in the turn that sends those bytes (the
// source's next recv is linked to the send), and a big transfer still keeps one buffer in flight
// per direction; a busy direction moves into big buffers and back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../../../src/core/net/constants.js';
import { newDirection, RelayOp, RingRelay, type RelayPair } from '../../../../src/dataplane/tcp/uring/ring-relay.js';
import { hostIoUringSupport, IoUring, type BufferRing } from '../../../../src/sys/io-uring.js';
import { loadLibc, type Libc } from '../../../../src/sys/libc.js';
import { SocketApi } from '../../../../src/sys/socket.js';
import { tcpPair } from '../../../helpers/ring-pairs.js';
import { segmentsIn } from '../../../helpers/tcp-info.js';

const GROUP = 1;
const BUFFER_BYTES = 16_384;

describe('the ring relay', { skip: hostIoUringSupport().available ? false : 'io_uring unavailable here' }, () => {
  const libc = loadLibc();
  const api = new SocketApi(libc);

  /** client <-> cfd (relay) ufd <-> server, a ring and its buffers; turn() runs one loop turn (waiting up to waitMs). */
  function setup(
    buffers = 16,
    big?: { readonly group: number; readonly count: number; readonly size: number },
    relayLibc: Libc = libc,
  ): { client: number; server: number; pair: RelayPair; ring: IoUring; ring_buffers: BufferRing; relay: RingRelay<RelayPair>; turn: (waitMs?: number) => void; ended: string[]; kinds: number[]; close: (closedAlready?: readonly number[]) => void } {
    const [client, cfd] = tcpPair(api, libc);
    const [ufd, server] = tcpPair(api, libc);
    const ring = new IoUring(64);
    const ringBuffers = ring.bufferRing(GROUP, buffers, BUFFER_BYTES);
    const ended: string[] = [];
    // As the engines do: the pair's end closes both its sockets (the last FIN crosses as the close).
    const relay: RingRelay<RelayPair> = new RingRelay<RelayPair>(ring, ringBuffers, relayLibc, api, Date.now, {
      group: GROUP,
      bufferBytes: BUFFER_BYTES,
      ringSockets: false,
      ...(big ? { big } : {}),
      end: (p, reason, lastFin) => {
        ended.push(reason);
        p.closed = true;
        relay.closeSockets(p, [cfd, ufd], reason, lastFin);
      },
    });
    const pair: RelayPair = { id: 1, cfd, ufd, closed: false, up: newDirection(), down: newDirection(), lastActive: 0, pending: 0, first: undefined };
    const kinds: number[] = [];
    const turn = (waitMs = 1000): void => {
      ring.submit(1, waitMs);
      const c = ring.completion;
      while (ring.next()) {
        kinds.push(c.kind);
        pair.pending--;
        relay.complete(c.kind, pair, c.res, c.flags);
      }
    };
    /** `closedAlready`: descriptors the test closed itself (never closed twice: the number may be another's by then). */
    const close = (closedAlready: readonly number[] = []): void => {
      if (!pair.closed && pair.pending > 0) {
        ring.cancelFdNow(cfd);
        ring.cancelFdNow(ufd);
      }
      ring.close();
      relay.close();
      ringBuffers.close();
      for (const fd of pair.closed ? [client, server] : [client, cfd, ufd, server]) if (!closedAlready.includes(fd)) libc.close(fd);
    };
    return { client, server, pair, ring, ring_buffers: ringBuffers, relay, turn, ended, kinds, close };
  }

  /** What `fd` has to read now: its bytes, and whether its peer's FIN is behind them. */
  function drain(fd: number): { bytes: Buffer; fin: boolean } {
    const chunks: Buffer[] = [];
    const buffer = Buffer.alloc(65_536);
    for (;;) {
      const n = api.recv(fd, buffer);
      if (n === null) return { bytes: Buffer.concat(chunks), fin: false };
      if (n === 0) return { bytes: Buffer.concat(chunks), fin: true };
      chunks.push(Buffer.from(buffer.subarray(0, n)));
    }
  }

  it("passes the server's FIN in the turn that sends its last bytes", () => {
    const s = setup();
    try {
      const reply = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      assert.equal(libc.send(s.server, reply, reply.length, 0), reply.length);
      libc.shutdown(s.server, C.SHUT_WR);
      s.relay.start(s.pair);
      // Turn 1 receives the reply; turn 2 sends it, and the recv linked behind the send finds the
      // FIN in the same io_uring_enter (unlinked, the FIN would be received one turn later).
      s.turn();
      assert.equal(s.pair.down.bytes, reply.length, 'the reply received in the first turn');
      assert.equal(s.pair.down.shut, false);
      s.turn();
      assert.equal(s.pair.down.shut, true, 'the FIN passed on in the second turn');
      const got = drain(s.client);
      assert.deepEqual([got.bytes.toString(), got.fin], [reply.toString(), true]);
      assert.deepEqual(s.ended, []);
    } finally {
      s.close();
    }
  });

  it("the server's FIN already behind its last bytes goes in their segment (read ahead, sent with MSG_MORE): one segment to the client, not two", () => {
    const s = setup();
    try {
      const reply = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      // The server's reply and FIN in one segment, so both are there when the relay's recv completes.
      assert.equal(libc.send(s.server, reply, reply.length, C.MSG_MORE), reply.length);
      libc.shutdown(s.server, C.SHUT_WR);
      const before = segmentsIn(libc, s.client);
      s.relay.start(s.pair);
      s.turn();
      assert.equal(s.pair.down.eof, true, 'the FIN read with the reply, before it was sent');
      s.turn();
      assert.equal(s.pair.down.shut, true);
      const got = drain(s.client);
      assert.deepEqual([got.bytes.toString(), got.fin], [reply.toString(), true]);
      assert.equal(segmentsIn(libc, s.client) - before, 1, 'the reply and the FIN in one segment');
      assert.deepEqual(s.ended, []);
    } finally {
      s.close();
    }
  });

  it("a reset right behind the server's last bytes (a recv's completion does not flag it: no read ahead): the bytes go to the client, then the pair ends with the reset's reason", () => {
    const s = setup();
    try {
      const reply = Buffer.from('partial');
      assert.equal(libc.send(s.server, reply, reply.length, 0), reply.length);
      // The server aborts (SO_LINGER {1, 0}): its reset follows the bytes.
      api.resetClose(s.server);
      s.relay.start(s.pair);
      for (let i = 0; i < 3 && s.ended.length === 0; i++) s.turn(100);
      assert.deepEqual(s.ended, ['upstream-ECONNRESET']);
      assert.equal(drain(s.client).bytes.toString(), 'partial', 'the bytes before the reset were relayed');
    } finally {
      s.close([s.server]);
    }
  });

  it('an error found by the read ahead (after a FIN-flagged recv): the bytes go to the client without a recv linked, then the pair ends with the source\'s errno', () => {
    // The kernel flags a FIN, not a reset, so this read ahead is made to fail: its recv says ECONNRESET.
    let failed = 0;
    const failing: Libc = {
      ...libc,
      recv: (fd, data, length, flags) => ((flags & C.MSG_DONTWAIT) !== 0 ? (failed++, -1) : libc.recv(fd, data, length, flags)),
      errno: () => (failed > 0 ? C.ECONNRESET : libc.errno()),
    };
    const s = setup(16, undefined, failing);
    try {
      const reply = Buffer.from('last bytes');
      assert.equal(libc.send(s.server, reply, reply.length, C.MSG_MORE), reply.length);
      libc.shutdown(s.server, C.SHUT_WR);
      s.relay.start(s.pair);
      s.turn();
      assert.equal(failed, 1, 'read ahead once');
      assert.equal(s.pair.down.failed, C.ECONNRESET);
      for (let i = 0; i < 3 && s.ended.length === 0; i++) s.turn(100);
      assert.deepEqual(s.ended, ['upstream-ECONNRESET']);
      assert.equal(s.pair.down.cancelled, 0, 'no recv was linked to the send');
      assert.equal(s.pair.down.bid, -1, 'its buffer went back');
      assert.equal(drain(s.client).bytes.toString(), 'last bytes', 'the bytes went before the end');
    } finally {
      s.close();
    }
  });

  it('relays 1 MiB each way with a half-close, one buffer in flight per direction', () => {
    const s = setup(4);
    try {
      const total = 1 << 20;
      const up = Buffer.alloc(total, 0x61);
      const down = Buffer.alloc(total, 0x62);
      let upSent = 0;
      let downSent = 0;
      const got = { client: [] as Buffer[], server: [] as Buffer[], clientFin: false, serverFin: false };
      s.relay.start(s.pair);
      // The peers are read between turns only: a turn waits a little at most (a send may wait for them).
      const until = Date.now() + 20_000;
      while (Date.now() < until && !(got.clientFin && got.serverFin)) {
        if (upSent < total) upSent += api.send(s.client, up.subarray(upSent)) ?? 0;
        else if (upSent === total) {
          libc.shutdown(s.client, C.SHUT_WR);
          upSent++;
        }
        if (downSent < total) downSent += api.send(s.server, down.subarray(downSent)) ?? 0;
        else if (downSent === total) {
          libc.shutdown(s.server, C.SHUT_WR);
          downSent++;
        }
        s.turn(5);
        // Each direction holds at most one buffer (the one being sent), one more only between a
        // send's completion and this turn giving its buffer back.
        assert.ok(s.ring_buffers.inUse <= 2, `${s.ring_buffers.inUse} buffers lent`);
        const c = drain(s.client);
        got.client.push(c.bytes);
        got.clientFin ||= c.fin;
        const v = drain(s.server);
        got.server.push(v.bytes);
        got.serverFin ||= v.fin;
      }
      assert.ok(got.clientFin && got.serverFin, 'both FINs passed');
      assert.ok(Buffer.concat(got.server).equals(up), 'client -> server intact');
      assert.ok(Buffer.concat(got.client).equals(down), 'server -> client intact');
      assert.deepEqual(s.ended, ['done']);
    } finally {
      s.close();
    }
  });

  it('a direction whose recvs fill their buffers takes big ones, and a short message goes back to a small one', () => {
    const s = setup(16, { group: 2, count: 4, size: 4 * BUFFER_BYTES });
    try {
      const total = 1 << 20;
      const down = Buffer.alloc(total);
      for (let i = 0; i < total; i++) down[i] = i % 251;
      let sent = 0;
      const received: Buffer[] = [];
      s.relay.start(s.pair);
      const until = Date.now() + 20_000;
      let got = 0;
      while (Date.now() < until && got < total) {
        if (sent < total) sent += api.send(s.server, down.subarray(sent)) ?? 0;
        s.turn(5);
        const r = drain(s.client);
        received.push(r.bytes);
        got += r.bytes.length;
      }
      assert.ok(Buffer.concat(received).equals(down), 'server -> client intact');
      assert.ok(s.kinds.includes(RelayOp.RecvUpstreamBig), 'the busy direction received into big buffers');
      assert.ok(!s.kinds.includes(RelayOp.RecvClientBig), 'the idle one did not');
      // A short message: the next recv is a small one again.
      const bigBefore = s.kinds.filter((k) => k === RelayOp.RecvUpstreamBig).length;
      for (const text of ['one', 'two']) {
        assert.equal(libc.send(s.server, Buffer.from(text), text.length, 0), text.length);
        for (let i = 0; i < 10 && drain(s.client).bytes.length === 0; i++) s.turn(50);
      }
      assert.ok(s.kinds.filter((k) => k === RelayOp.RecvUpstreamBig).length <= bigBefore + 1, 'at most one more big recv (the one in flight)');
      assert.equal(s.kinds.at(-2) === RelayOp.RecvUpstream || s.kinds.at(-1) === RelayOp.RecvUpstream, true, 'the last message came in a small buffer');
      assert.deepEqual(s.ended, []);
    } finally {
      s.close();
    }
  });
});

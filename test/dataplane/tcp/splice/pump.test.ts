// The splice engine's byte pump through a fake kernel (fake-kernel.ts): no root, no sockets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../../../src/core/net/constants.js';
import { socketInterest } from '../../../../src/dataplane/tcp/splice/interest.js';
import { PipePool } from '../../../../src/dataplane/tcp/splice/pipe-pool.js';
import { newDirection, Pump, type Direction } from '../../../../src/dataplane/tcp/splice/pump.js';
import { FakeKernel } from './fake-kernel.js';

const PIPE = 64 * 1024;

/** `bulk`: the size full pipes grow to (PIPE: they never grow). */
function setup(maxPipes = 8, bulk = PIPE): { kernel: FakeKernel; pool: PipePool; pump: Pump } {
  const kernel = new FakeKernel();
  const pool = new PipePool(kernel, PIPE, maxPipes, undefined, bulk);
  return { kernel, pool, pump: new Pump(kernel, pool, PIPE) };
}

const splices = (k: FakeKernel): number => k.calls.filter((c) => c === 'splice').length;

/** A direction already in splice mode (a bulk transfer under way). */
const spliced = (): Direction => ({ ...newDirection(), splicing: true });

describe('splice pump, splice mode (fake kernel)', () => {
  it('moves the bytes waiting, then gives its pipe back to the pool (and still splices: it read more than a message)', () => {
    const { kernel, pool, pump } = setup();
    const client = kernel.socket({ inbound: 10_000 });
    const server = kernel.socket();
    const up = spliced();
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(kernel.state(server).sent, 10_000);
    assert.equal(up.bytes, 10_000);
    assert.equal(up.buffered, 0);
    assert.equal(up.r, -1, 'no pipe held while nothing is in flight');
    assert.equal(pool.inUse, 0);
    assert.equal(pool.pooled, 1);
    assert.equal(up.eof, false);
    // A short read (10,000 < 64 KiB) means drained: no extra read that could only say EAGAIN.
    assert.equal(splices(kernel), 2);
    assert.equal(up.splicing, true, 'drained after 10,000 bytes: a bulk stream read as it comes, still splicing');
    kernel.state(client).inbound = 100;
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(up.splicing, false, 'drained after a small read: back to copying');
  });

  it('half-close: the FIN crosses as SHUT_WR after the last bytes, and the other way keeps flowing', () => {
    const { kernel, pump } = setup();
    const client = kernel.socket({ inbound: 5_000, fin: true });
    const server = kernel.socket({ inbound: 0 });
    const up = newDirection();
    const down = newDirection();
    assert.equal(pump.move(up, down, client, server, true), undefined);
    assert.equal(kernel.state(server).sent, 5_000);
    assert.equal(up.eof, true);
    assert.equal(up.shut, true);
    assert.equal(kernel.state(server).shutWr, true, 'FIN passed on');
    assert.equal(kernel.state(server).lingerOff, true, 'a crash must no longer reset the server');
    assert.equal(kernel.state(client).shutWr, false);
    // The server goes on answering the half-closed client.
    kernel.state(server).inbound = 300_000;
    assert.equal(pump.move(down, up, server, client, false), undefined);
    assert.equal(kernel.state(client).sent, 300_000);
    assert.equal(down.shut, false);
    kernel.state(server).fin = true;
    assert.equal(pump.move(down, up, server, client, true), undefined);
    assert.equal(down.shut, true);
    // The other way was shut already: close() sends this FIN, so no shutdown on the client.
    assert.equal(kernel.state(client).shutWr, false);
    assert.equal(kernel.state(client).lingerOff, true);
  });

  it('a full pipe stops reading the source (backpressure) until the sink takes bytes again', () => {
    const { kernel, pool, pump } = setup();
    const client = kernel.socket({ inbound: 1_000_000 });
    const server = kernel.socket({ room: 0 });
    const up = spliced();
    const down = newDirection();
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(up.buffered, PIPE, 'the pipe holds exactly its size');
    assert.equal(kernel.state(client).inbound, 1_000_000 - PIPE, 'the rest waits in the client socket');
    assert.equal(pool.inUse, 1, 'a pipe with bytes in flight is held');
    // Interest follows: the client is not read, the server is watched for room.
    assert.equal(socketInterest(up, down, PIPE) & C.EPOLLIN, 0);
    assert.equal(socketInterest(down, up, PIPE) & C.EPOLLOUT, C.EPOLLOUT);
    const before = kernel.calls.length;
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.deepEqual(kernel.calls.slice(before), ['splice'], 'still full: one write attempt, no read');
    kernel.state(server).room = 1 << 30;
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(kernel.state(server).sent, 1_000_000);
    assert.equal(pool.inUse, 0);
  });

  it('a pipe left full by a slow sink grows to the bulk size, so the next turn reads up to that much; it shrinks back never, and only full pipes grow', () => {
    const BULK = 4 * PIPE;
    const { kernel, pool, pump } = setup(8, BULK);
    const client = kernel.socket({ inbound: 1_000_000 });
    const server = kernel.socket({ room: 0 });
    const up = spliced();
    const down = newDirection();
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(up.buffered, PIPE, 'the first turn fills the pipe as it was');
    assert.equal(up.size, BULK, 'full with the sink blocked: grown');
    assert.equal(pool.grown, 1);
    // Grown, it has room again: the client is read, up to the new size.
    assert.equal(socketInterest(up, down, PIPE) & C.EPOLLIN, C.EPOLLIN);
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(up.buffered, BULK);
    assert.equal(kernel.state(client).inbound, 1_000_000 - BULK);
    assert.equal(socketInterest(up, down, PIPE) & C.EPOLLIN, 0, 'full at the bulk size: backpressure');
    kernel.state(server).room = 1 << 30;
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(kernel.state(server).sent, 1_000_000);
    assert.equal(pool.inUse, 0);
    assert.equal(pool.grown, 1, 'the grown pipe waits in the pool for the next bulk direction');
    // A direction whose sink keeps up never fills its pipe, and never grows one.
    const other = kernel.socket({ inbound: 3 * PIPE });
    const fast = kernel.socket({ room: 1 << 30 });
    const d = spliced();
    pool.closeIdle();
    assert.equal(pool.grown, 0);
    const before = kernel.calls.length;
    assert.equal(pump.move(d, newDirection(), other, fast, false), undefined);
    assert.equal(kernel.state(fast).sent, 3 * PIPE);
    assert.deepEqual(kernel.calls.slice(before).filter((c) => c === 'fcntl'), ['fcntl'], 'its new pipe sized once, never grown');
    assert.equal(pool.grown, 0);
  });

  it('EAGAIN both ways is no error: nothing moves, nothing is held', () => {
    const { kernel, pool, pump } = setup();
    const client = kernel.socket();
    const server = kernel.socket();
    const up = spliced();
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(up.bytes, 0);
    assert.equal(up.eof, false);
    assert.equal(pool.inUse, 0);
    assert.equal(pool.pooled, 1);
    // The next flow's direction takes the pooled pipe: no second pipe2.
    assert.equal(pump.move(spliced(), newDirection(), client, server, false), undefined);
    assert.equal(kernel.calls.filter((c) => c === 'pipe2').length, 1);
  });

  it('a reset on the source or the sink is returned with its errno, the bytes in flight stay counted', () => {
    const { kernel, pool, pump } = setup();
    const client = kernel.socket({ reset: true });
    const server = kernel.socket();
    assert.deepEqual(pump.move(spliced(), newDirection(), client, server, false), { at: 'source', errno: C.ECONNRESET });
    const busy = kernel.socket({ inbound: 4_000 });
    const gone = kernel.socket({ reset: true });
    const d = spliced();
    assert.deepEqual(pump.move(d, newDirection(), busy, gone, false), { at: 'sink', errno: 32 });
    assert.equal(d.buffered, 4_000);
    // The engine gives the pipe back as not empty: it is closed, never pooled with stale bytes.
    const open = kernel.openPipes();
    pool.release(d, false, newDirection());
    assert.equal(kernel.openPipes(), open - 1);
  });

  it('no pipe to be had (EMFILE) is returned as a pipe failure', () => {
    const { kernel, pump } = setup();
    kernel.outOfDescriptors = true;
    assert.deepEqual(pump.move(spliced(), newDirection(), kernel.socket({ inbound: 1 }), kernel.socket(), false), { at: 'pipe', errno: C.EMFILE });
  });

  it('one call moves at most PUMP_ROUNDS pipe-fulls, so one fast flow cannot hold the loop', () => {
    const { kernel, pump } = setup();
    const client = kernel.socket({ inbound: 100 * PIPE });
    const server = kernel.socket();
    const up = spliced();
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(up.bytes, C.PUMP_ROUNDS * PIPE);
    assert.equal(kernel.state(client).inbound, (100 - C.PUMP_ROUNDS) * PIPE);
  });

  it('reads on to a FIN that is known to be there in the same call', () => {
    const { kernel, pump } = setup();
    const client = kernel.socket({ inbound: 100, fin: true });
    const server = kernel.socket();
    const up = newDirection();
    assert.equal(pump.move(up, newDirection(), client, server, true), undefined);
    assert.equal(up.eof, true);
    assert.equal(up.shut, true);
    // Without the hint the short read ends the call; the FIN waits for the next epoll report.
    const later = kernel.socket({ inbound: 100, fin: true });
    const d = newDirection();
    assert.equal(pump.move(d, newDirection(), later, kernel.socket(), false), undefined);
    assert.equal(d.eof, false);
  });

  it('a direction that finds the pipe budget spent waits unread, and moves its bytes once a pipe is handed to it', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool<string>(kernel, PIPE, 1);
    const pump = new Pump(kernel, pool, PIPE);
    // One flow holds the only pipe: its sink takes nothing (backpressure).
    const busySource = kernel.socket({ inbound: 2 * PIPE });
    const busySink = kernel.socket({ room: 0 });
    const busy = spliced();
    assert.equal(pump.move(busy, newDirection(), busySource, busySink, false), undefined);
    assert.equal(pool.inUse, 1);
    // Another flow's bytes arrive: no pipe to be had, and it is no failure.
    const source = kernel.socket({ inbound: 5_000, fin: true });
    const sink = kernel.socket();
    // Bytes it holds (its sink was slow when it copied): it needs a pipe to read on.
    const d = spliced();
    d.held = Buffer.from([0, 1, 2]);
    kernel.state(source).read = 3;
    kernel.state(sink).room = 0;
    const other = newDirection();
    const before = kernel.calls.length;
    assert.equal(pump.move(d, other, source, sink, true), undefined);
    assert.equal(d.waiting, true);
    assert.deepEqual(kernel.calls.slice(before), ['send'], 'the held bytes tried, no read without a pipe to read into');
    assert.equal(d.bytes, 0);
    assert.equal(d.r, -1);
    assert.equal(socketInterest(d, other, PIPE) & C.EPOLLIN, 0, 'not watched for reading while it waits (no level-triggered spin)');
    pool.wait(d, 'waiting flow');
    // Called again before its turn (another event of its flow): it still waits, in its place.
    assert.equal(pump.move(d, other, source, sink, true), undefined);
    assert.equal(d.waiting, true);
    pool.wait(d, 'waiting flow');
    assert.equal(pool.waiting, 1);
    // The busy sink drains: its pipe goes straight to the waiter.
    kernel.state(busySink).room = 1 << 30;
    kernel.state(sink).room = 1 << 30;
    assert.equal(pump.move(busy, newDirection(), busySource, busySink, false), undefined);
    assert.equal(kernel.state(busySink).sent, 2 * PIPE);
    assert.deepEqual(pool.takeWoken(), ['waiting flow']);
    assert.equal(pump.move(d, other, source, sink, true), undefined);
    assert.equal(d.waiting, false);
    assert.equal(kernel.state(sink).sent, 5_003, 'every byte, the held ones first, after the wait');
    assert.equal(d.shut, true, 'and the FIN after them');
    assert.equal(pool.inUse, 0);
    assert.equal(kernel.calls.filter((c) => c === 'pipe2').length, 1, 'one pipe served both flows');
  });

  it('the other way of a flow that holds a pipe never waits: it moves within the flow\'s slot while other flows wait', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool<string>(kernel, PIPE, 2); // one slot
    const pump = new Pump(kernel, pool, PIPE);
    const client = kernel.socket({ inbound: 4 * PIPE });
    const server = kernel.socket({ room: 0, inbound: 0 }); // reads nothing until its reply goes
    const up = spliced();
    const down = spliced();
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(up.buffered, PIPE, 'the request is stuck in its pipe');
    const elsewhere = spliced();
    elsewhere.held = Buffer.from([0]);
    assert.equal(pump.move(elsewhere, newDirection(), kernel.socket({ inbound: 10, read: 1 }), kernel.socket({ room: 0 }), false), undefined);
    assert.equal(elsewhere.waiting, true, 'another flow waits: the only slot is taken');
    pool.wait(elsewhere, 'elsewhere');
    // The server replies: the reply gets a pipe at once, although another flow waits in line.
    kernel.state(server).inbound = 1000;
    assert.equal(pump.move(down, up, server, client, false), undefined);
    assert.equal(down.waiting, false);
    assert.equal(kernel.state(client).sent, 1000);
    assert.equal(pool.inUse, 1, 'the reply gave its pipe back (pooled, not to the line: the flow keeps its slot)');
    assert.deepEqual(pool.takeWoken(), []);
    // The server reads again: the request drains, the flow gives back its last pipe with the slot.
    kernel.state(server).room = 1 << 30;
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(kernel.state(server).sent, 4 * PIPE);
    assert.deepEqual(pool.takeWoken(), ['elsewhere']);
  });
});

describe('splice pump, copy mode and the switch to splice (fake kernel)', () => {
  const COPY = 16 * 1024;
  function copySetup(maxPipes = 8): { kernel: FakeKernel; pool: PipePool<string>; pump: Pump } {
    const kernel = new FakeKernel();
    const pool = new PipePool<string>(kernel, PIPE, maxPipes, undefined, PIPE);
    return { kernel, pool, pump: new Pump(kernel, pool, PIPE, COPY) };
  }

  it('a small message is copied: one recv, one send, no pipe', () => {
    const { kernel, pool, pump } = copySetup();
    const client = kernel.socket({ inbound: 100 });
    const server = kernel.socket();
    const up = newDirection();
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.deepEqual(kernel.calls, ['recv', 'send'], 'a short read ends the call: no read that could only say EAGAIN');
    assert.equal(kernel.state(server).sent, 100);
    assert.equal(up.bytes, 100);
    assert.equal(up.splicing, false);
    assert.equal(up.r, -1);
    assert.equal(pool.inUse + pool.pooled, 0, 'no pipe made');
    assert.equal(socketInterest(up, newDirection(), PIPE) & C.EPOLLIN, C.EPOLLIN);
  });

  it('a FIN right after a small message: read before the message is sent, which says MSG_MORE so the FIN (SHUT_WR) joins its segment, in one call', () => {
    const { kernel, pump } = copySetup();
    const client = kernel.socket({ inbound: 300, fin: true });
    const server = kernel.socket();
    const up = newDirection();
    assert.equal(pump.move(up, newDirection(), client, server, true), undefined);
    assert.deepEqual(kernel.calls, ['recv', 'recv', 'send(MSG_MORE)', 'setsockopt', 'shutdown']);
    assert.equal(kernel.state(server).sent, 300);
    assert.equal(up.shut, true);
  });

  it('a reset behind a small message, found by the read before the send: the message goes (no MSG_MORE), then the source failure', () => {
    const { kernel, pump } = copySetup();
    const client = kernel.socket({ inbound: 300, resetWhenDrained: true });
    const server = kernel.socket();
    const up = newDirection();
    assert.deepEqual(pump.move(up, newDirection(), client, server, true), { at: 'source', errno: C.ECONNRESET });
    assert.deepEqual(kernel.calls, ['recv', 'recv', 'send']);
    assert.equal(kernel.state(server).sent, 300);
    assert.equal(up.eof, false);
  });

  it('the FIN not known to be there (no EPOLLRDHUP): the message goes at once, without MSG_MORE, and the FIN on a later wake-up', () => {
    const { kernel, pump } = copySetup();
    const client = kernel.socket({ inbound: 300, fin: true });
    const server = kernel.socket();
    const up = newDirection();
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.deepEqual(kernel.calls, ['recv', 'send']);
    assert.equal(up.shut, false);
    assert.equal(pump.move(up, newDirection(), client, server, true), undefined);
    assert.deepEqual(kernel.calls.slice(2), ['recv', 'setsockopt', 'shutdown']);
    assert.equal(kernel.state(server).sent, 300);
  });

  it('a sink that takes part: the rest is held (not read on past it), the direction splices next, and order stays exact', () => {
    const { kernel, pool, pump } = copySetup();
    const client = kernel.socket({ inbound: 1000 });
    const server = kernel.socket({ room: 400 });
    const up = newDirection();
    const down = newDirection();
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(kernel.state(server).sent, 400);
    assert.equal(up.held?.length, 600);
    assert.equal(up.splicing, true);
    assert.equal(up.r, -1, 'nothing in a pipe yet: none held');
    assert.equal(socketInterest(down, up, PIPE) & C.EPOLLOUT, C.EPOLLOUT, 'the sink is watched for room');
    assert.equal(socketInterest(up, down, PIPE) & C.EPOLLIN, C.EPOLLIN, 'the source may fill a pipe meanwhile');
    // More comes while the sink is full: it goes into a pipe, behind the held bytes.
    kernel.state(client).inbound = 3 * PIPE;
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(up.buffered, PIPE);
    assert.equal(up.held?.length, 600, 'the sink took nothing');
    assert.equal(socketInterest(up, down, PIPE) & C.EPOLLIN, 0, 'backpressure: one held copy and one pipe at most');
    assert.equal(pool.inUse, 1);
    // The sink opens: held bytes first, then the pipe (the fake throws on any byte out of order).
    kernel.state(server).room = 1 << 30;
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(kernel.state(server).sent, 1000 + 3 * PIPE);
    assert.equal(up.held, undefined);
    assert.equal(up.bytes, 1000 + 3 * PIPE);
  });

  it('a sink that frees room between calls (acks) never gets pipe bytes before the held ones are all gone', () => {
    const { kernel, pump } = copySetup();
    const client = kernel.socket({ inbound: 1000 });
    const server = kernel.socket({ room: 400 });
    const up = newDirection();
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    kernel.state(server).room = 0;
    kernel.state(client).inbound = 5000;
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(up.buffered, 5000);
    // Each write now takes 100 bytes, and the room is back by the next call.
    Object.assign(kernel.state(server), { room: 1 << 30, perCall: 100 });
    for (let i = 0; i < 100 && kernel.state(server).sent < 6000; i++) assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(kernel.state(server).sent, 6000, 'every byte, in order (the fake throws on any other)');
  });

  it('EAGAIN on the sink: the whole read is held, the FIN waits for it, then follows it', () => {
    const { kernel, pump } = copySetup();
    const client = kernel.socket({ inbound: 50, fin: true });
    const server = kernel.socket({ room: 0 });
    const up = newDirection();
    assert.equal(pump.move(up, newDirection(), client, server, true), undefined);
    assert.equal(up.held?.length, 50);
    assert.equal(up.eof, true, 'the FIN was read');
    assert.equal(up.shut, false, 'but not passed on ahead of the held bytes');
    assert.equal(kernel.state(server).shutWr, false);
    kernel.state(server).room = 10;
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(up.shut, false);
    kernel.state(server).room = 1 << 30;
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(kernel.state(server).sent, 50);
    assert.equal(up.shut, true);
    assert.equal(kernel.state(server).shutWr, true);
  });

  it('a bulk transfer after small messages: a read that fills the scratch buffer switches to splice; drained after a small read, it copies again', () => {
    const { kernel, pool, pump } = copySetup();
    const client = kernel.socket();
    const server = kernel.socket();
    const up = newDirection();
    for (const size of [10, 200, 3000]) {
      kernel.state(client).inbound = size;
      assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    }
    assert.equal(splices(kernel), 0, 'small messages copied');
    kernel.state(client).inbound = 10 * PIPE + 7;
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(kernel.state(server).sent, 3210 + 10 * PIPE + 7, 'every byte, in order');
    assert.ok(splices(kernel) >= 2 * 10, 'the bulk went through the pipe');
    assert.equal(kernel.calls.filter((c) => c === 'recv').length, 4, 'one copy of the bulk (the read that showed it), then splice');
    assert.equal(up.splicing, true, 'drained, but after a bulk read: still splicing');
    assert.equal(pool.inUse, 0, 'no pipe held while nothing is in flight');
    // The next message is small: spliced, drained, and from then on copied again.
    kernel.state(client).inbound = 100;
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(up.splicing, false, 'a small read and the pipe drained: copying again');
    const spliceCalls = splices(kernel);
    kernel.state(client).inbound = 100;
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(splices(kernel), spliceCalls, 'copied');
    assert.equal(kernel.state(server).sent, 3410 + 10 * PIPE + 7);
    // A drain after a bulk read keeps splicing (no flip-flop inside a transfer).
    kernel.state(server).room = 0;
    kernel.state(client).inbound = 2 * COPY;
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(up.splicing, true);
    kernel.state(server).room = 1 << 30;
    const before = kernel.calls.length;
    kernel.state(client).inbound = COPY;
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.ok(kernel.calls.slice(before).includes('splice'));
    assert.equal(kernel.state(server).sent, 3410 + 10 * PIPE + 7 + 3 * COPY);
  });

  it('a bulk direction that finds the pipe budget spent, with nothing held, copies on instead of waiting', () => {
    const { kernel, pool, pump } = copySetup(2);
    const busy = spliced();
    assert.equal(pump.move(busy, newDirection(), kernel.socket({ inbound: 2 * PIPE }), kernel.socket({ room: 0 }), false), undefined);
    assert.equal(pool.spent, true);
    const client = kernel.socket({ inbound: 5 * COPY + 1 });
    const server = kernel.socket();
    const up = newDirection();
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(up.waiting, false);
    assert.equal(kernel.state(server).sent, 5 * COPY + 1, 'copied, in order');
    assert.equal(up.r, -1);
  });

  it('errors in copy mode: a reset source or sink is returned with its errno', () => {
    const { kernel, pump } = copySetup();
    assert.deepEqual(pump.move(newDirection(), newDirection(), kernel.socket({ reset: true }), kernel.socket(), false), { at: 'source', errno: C.ECONNRESET });
    const d = newDirection();
    assert.deepEqual(pump.move(d, newDirection(), kernel.socket({ inbound: 10 }), kernel.socket({ reset: true }), false), { at: 'sink', errno: 32 });
    assert.equal(d.bytes, 10, 'read, counted');
  });
});

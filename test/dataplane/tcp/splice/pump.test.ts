// The splice engine's byte pump through a fake kernel (fake-kernel.ts): no root, no sockets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../../../src/core/net/constants.js';
import { socketInterest } from '../../../../src/dataplane/tcp/splice/interest.js';
import { PipePool } from '../../../../src/dataplane/tcp/splice/pipe-pool.js';
import { newDirection, Pump } from '../../../../src/dataplane/tcp/splice/pump.js';
import { FakeKernel } from './fake-kernel.js';

const PIPE = 64 * 1024;

/** `bulk`: the size full pipes grow to (PIPE: they never grow). */
function setup(maxPipes = 8, bulk = PIPE): { kernel: FakeKernel; pool: PipePool; pump: Pump } {
  const kernel = new FakeKernel();
  const pool = new PipePool(kernel, PIPE, maxPipes, undefined, bulk);
  return { kernel, pool, pump: new Pump(kernel, pool, PIPE) };
}

const splices = (k: FakeKernel): number => k.calls.filter((c) => c === 'splice').length;

describe('splice pump (fake kernel)', () => {
  it('moves the bytes waiting, then gives its pipe back to the pool', () => {
    const { kernel, pool, pump } = setup();
    const client = kernel.socket({ inbound: 10_000 });
    const server = kernel.socket();
    const up = newDirection();
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
    const up = newDirection();
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
    const up = newDirection();
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
    const d = newDirection();
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
    const up = newDirection();
    assert.equal(pump.move(up, newDirection(), client, server, false), undefined);
    assert.equal(up.bytes, 0);
    assert.equal(up.eof, false);
    assert.equal(pool.inUse, 0);
    assert.equal(pool.pooled, 1);
    // The next flow's direction takes the pooled pipe: no second pipe2.
    assert.equal(pump.move(newDirection(), newDirection(), client, server, false), undefined);
    assert.equal(kernel.calls.filter((c) => c === 'pipe2').length, 1);
  });

  it('a reset on the source or the sink is returned with its errno, the bytes in flight stay counted', () => {
    const { kernel, pool, pump } = setup();
    const client = kernel.socket({ reset: true });
    const server = kernel.socket();
    assert.deepEqual(pump.move(newDirection(), newDirection(), client, server, false), { at: 'source', errno: C.ECONNRESET });
    const busy = kernel.socket({ inbound: 4_000 });
    const gone = kernel.socket({ reset: true });
    const d = newDirection();
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
    assert.deepEqual(pump.move(newDirection(), newDirection(), kernel.socket({ inbound: 1 }), kernel.socket(), false), { at: 'pipe', errno: C.EMFILE });
  });

  it('one call moves at most PUMP_ROUNDS pipe-fulls, so one fast flow cannot hold the loop', () => {
    const { kernel, pump } = setup();
    const client = kernel.socket({ inbound: 100 * PIPE });
    const server = kernel.socket();
    const up = newDirection();
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
    const busy = newDirection();
    assert.equal(pump.move(busy, newDirection(), busySource, busySink, false), undefined);
    assert.equal(pool.inUse, 1);
    // Another flow's bytes arrive: no pipe to be had, and it is no failure.
    const source = kernel.socket({ inbound: 5_000, fin: true });
    const sink = kernel.socket();
    const d = newDirection();
    const other = newDirection();
    const before = kernel.calls.length;
    assert.equal(pump.move(d, other, source, sink, true), undefined);
    assert.equal(d.waiting, true);
    assert.deepEqual(kernel.calls.slice(before), [], 'no read without a pipe to read into');
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
    assert.equal(pump.move(busy, newDirection(), busySource, busySink, false), undefined);
    assert.equal(kernel.state(busySink).sent, 2 * PIPE);
    assert.deepEqual(pool.takeWoken(), ['waiting flow']);
    assert.equal(pump.move(d, other, source, sink, true), undefined);
    assert.equal(d.waiting, false);
    assert.equal(kernel.state(sink).sent, 5_000, 'every byte, after the wait');
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
    const up = newDirection();
    const down = newDirection();
    assert.equal(pump.move(up, down, client, server, false), undefined);
    assert.equal(up.buffered, PIPE, 'the request is stuck in its pipe');
    const elsewhere = newDirection();
    assert.equal(pump.move(elsewhere, newDirection(), kernel.socket({ inbound: 10 }), kernel.socket(), false), undefined);
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

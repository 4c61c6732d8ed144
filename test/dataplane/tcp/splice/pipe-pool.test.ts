import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { F_SETPIPE_SZ } from '../../../../src/core/net/constants.js';
import { BULK_PIPE_BYTES, PipePool, type PipeEnds } from '../../../../src/dataplane/tcp/splice/pipe-pool.js';
import { loadLibc } from '../../../../src/sys/libc.js';
import { FakeKernel } from './fake-kernel.js';

const ends = (): PipeEnds => ({ r: -1, w: -1 });
/** The other direction of a flow that holds no pipe. */
const alone: PipeEnds = { r: -1, w: -1 };

describe('splice pipe pool (fake kernel)', () => {
  it('grows a pipe to the bulk size once, keeps it grown in the pool, caps grown pipes, and counts them back when closed', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool(kernel, 65536, 8, 8, 1 << 20, 1);
    const a = ends();
    const b = ends();
    assert.ok(pool.take(a, alone));
    assert.equal(a.size, 65536, 'the size the kernel gave');
    assert.equal(pool.grow(a), true);
    assert.equal(a.size, 1 << 20);
    assert.equal(kernel.pipeCapacity(a.w), 1 << 20);
    assert.equal(pool.grown, 1);
    const calls = kernel.calls.length;
    assert.equal(pool.grow(a), false, 'already grown: no system call');
    assert.ok(pool.take(b, a));
    assert.equal(pool.grow(b), false, 'the cap (1 grown pipe) is reached');
    assert.equal(kernel.calls.length, calls + 2, 'pipe2 and fcntl of b only');
    pool.release(a, true, b);
    const c = ends();
    assert.ok(pool.take(c, b));
    assert.equal(c.size, 1 << 20, 'a pooled pipe keeps its size');
    pool.release(c, true, b);
    pool.release(b, true, alone);
    pool.closeIdle();
    assert.equal(pool.grown, 0);
    assert.equal(pool.pooled, 0);
  });

  it('real pipes: the kernel gives the asked sizes, and a full pipe grows to BULK_PIPE_BYTES (its default fs/pipe-max-size)', () => {
    const libc = loadLibc();
    const F_GETPIPE_SZ = F_SETPIPE_SZ + 1;
    const pool = new PipePool(libc, 256 * 1024, 4);
    const a = ends();
    assert.ok(pool.take(a, alone));
    try {
      assert.equal(a.size, 256 * 1024);
      assert.equal(libc.fcntl(a.w, F_GETPIPE_SZ, 0), 256 * 1024);
      assert.equal(pool.grow(a), true);
      assert.equal(a.size, BULK_PIPE_BYTES);
      assert.equal(libc.fcntl(a.w, F_GETPIPE_SZ, 0), BULK_PIPE_BYTES);
    } finally {
      pool.draining = true;
      pool.release(a, true, alone);
    }
    assert.equal(pool.grown, 0, 'closed: no longer counted');
  });

  it('a pipe the kernel refuses to grow keeps its size and is not asked again; a refused first size counts as the default', () => {
    const kernel = new FakeKernel();
    kernel.pipeSizeLimit = 256 * 1024;
    const pool = new PipePool(kernel, 256 * 1024, 8);
    const a = ends();
    assert.ok(pool.take(a, alone));
    assert.equal(pool.grow(a), false);
    assert.equal(a.size, 256 * 1024);
    const calls = kernel.calls.length;
    assert.equal(pool.grow(a), false);
    assert.equal(kernel.calls.length, calls, 'refused once: not asked again');
    assert.equal(pool.grown, 0);
    kernel.pipeSizeLimit = 0;
    const b = ends();
    assert.ok(pool.take(b, a));
    assert.equal(b.size, 65536, 'F_SETPIPE_SZ refused: the kernel default');
  });

  it('counts every size the kernel refuses (EPERM) and tells the engine of the first one only', () => {
    const kernel = new FakeKernel();
    kernel.pipeSizeLimit = 256 * 1024;
    const pool = new PipePool(kernel, 256 * 1024, 8);
    const told: [number, number][] = [];
    pool.onResizeRefused = (errno, bytes) => told.push([errno, bytes]);
    const a = ends();
    assert.ok(pool.take(a, alone));
    assert.equal(pool.resizesRefused, 0, 'the first size was given');
    assert.equal(pool.grow(a), false);
    assert.equal(pool.resizesRefused, 1);
    assert.deepEqual(told, [[1, BULK_PIPE_BYTES]], 'EPERM, the bulk size asked');
    kernel.pipeSizeLimit = 0;
    const b = ends();
    assert.ok(pool.take(b, a));
    assert.equal(pool.resizesRefused, 2, 'a refused first size counts too');
    assert.equal(told.length, 1, 'told once');
  });

  it('sizes new pipes, reuses empty ones, and never keeps more than the descriptor budget allows', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool(kernel, 256 * 1024, 2);
    const a = ends();
    const b = ends();
    assert.ok(pool.take(a, alone));
    assert.ok(pool.take(b, alone));
    assert.deepEqual(kernel.calls, ['pipe2', 'fcntl', 'pipe2', 'fcntl']);
    assert.equal(pool.inUse, 2);
    pool.release(a, true, alone);
    assert.equal(pool.pooled, 1);
    assert.deepEqual(a, { r: -1, w: -1, size: 0 });
    pool.release(b, true, alone);
    assert.equal(pool.pooled, 2);
    // Three held at once (beyond the budget of 2): given back, they are kept only while held plus
    // pooled stays within it.
    const c = ends();
    const d = ends();
    const e = ends();
    pool.take(c, alone);
    pool.take(d, alone);
    pool.take(e, alone);
    assert.equal(pool.inUse, 3);
    assert.equal(kernel.calls.filter((x) => x === 'pipe2').length, 3, 'two from the pool, one new');
    pool.release(c, true, alone);
    assert.equal(pool.pooled, 0, 'held 2 + pooled 0 is the budget: closed');
    pool.release(d, true, alone);
    assert.equal(pool.pooled, 1);
    pool.release(e, true, alone);
    assert.equal(pool.pooled, 2);
    assert.equal(kernel.openPipes(), 2);
    pool.release(ends(), true, alone); // nothing held: no-op
    assert.equal(pool.inUse, 0);
  });

  it('closes pipes given back while draining, and the idle ones at the end', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool(kernel, 65536, 8);
    const a = ends();
    const b = ends();
    pool.take(a, alone);
    pool.take(b, alone);
    pool.release(a, true, alone);
    pool.draining = true;
    pool.release(b, true, alone);
    assert.equal(pool.pooled, 1);
    assert.equal(kernel.openPipes(), 1);
    pool.closeIdle();
    assert.equal(kernel.openPipes(), 0);
    assert.equal(pool.pooled, 0);
  });

  it('past the budget a direction waits in line: a flow\'s last pipe given back goes to the first in line, in order', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool<string>(kernel, 65536, 4); // two slots of two pipes
    const a = ends();
    const b = ends();
    assert.equal(pool.spent, false);
    pool.take(a, alone);
    pool.take(b, alone);
    assert.equal(pool.spent, true, 'both slots held (one pipe each)');
    const first = ends();
    const second = ends();
    pool.wait(first, 'first');
    pool.wait(second, 'second');
    pool.wait(first, 'first'); // already in line: keeps its place, no second entry
    assert.equal(pool.waiting, 2);
    assert.equal(pool.waits, 2, 'directions that joined the line (counted once each)');
    assert.deepEqual(pool.takeWoken(), []);
    const aEnds = { ...a };
    pool.release(a, true, alone);
    assert.deepEqual(first, aEnds, 'the very pipe, handed over');
    assert.deepEqual(a, { r: -1, w: -1, size: 0 });
    assert.equal(pool.inUse, 2, 'still held, by the waiter now');
    assert.equal(pool.pooled, 0, 'never pooled in between');
    assert.equal(pool.waiting, 1);
    assert.equal(pool.spent, true, 'a direction still waits: nobody takes past the line');
    assert.deepEqual(pool.takeWoken(), ['first']);
    assert.deepEqual(pool.takeWoken(), [], 'taken once');
    pool.release(b, true, alone);
    assert.deepEqual(pool.takeWoken(), ['second']);
    assert.equal(pool.waiting, 0);
    assert.equal(pool.spent, true, 'the budget is held again');
    pool.release(first, true, alone);
    assert.equal(pool.spent, false);
    assert.equal(pool.pooled, 1, 'nobody waits: pooled again');
    assert.equal(kernel.calls.filter((c) => c === 'pipe2').length, 2, 'two pipes served four directions');
    assert.equal(pool.waits, 2, 'cumulative: the waits stay counted once served');
  });

  it('a pipe given back with bytes in it is closed and the waiter gets a new one; a forgotten waiter gets none', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool<string>(kernel, 65536, 1);
    const a = ends();
    pool.take(a, alone);
    const gone = ends();
    const next = ends();
    pool.wait(gone, 'gone');
    pool.wait(next, 'next');
    pool.forget(gone); // its flow closed while waiting
    const stale = { ...a };
    pool.release(a, false, alone);
    assert.deepEqual(pool.takeWoken(), ['next']);
    assert.notEqual(next.r, stale.r, 'a new pipe: the old one held stale bytes');
    assert.equal(gone.r, -1);
    assert.equal(kernel.openPipes(), 1);
    assert.equal(pool.inUse, 1);
  });

  it('when no new pipe can be made the waiter keeps its place for the next pipe given back', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool<string>(kernel, 65536, 4);
    const a = ends();
    const b = ends();
    pool.take(a, alone);
    pool.take(b, alone);
    const w = ends();
    pool.wait(w, 'w');
    kernel.outOfDescriptors = true;
    pool.release(a, false, alone);
    assert.deepEqual(pool.takeWoken(), []);
    assert.equal(pool.waiting, 1);
    assert.equal(pool.spent, true, 'below the budget, but a direction waits first');
    kernel.outOfDescriptors = false;
    pool.release(b, true, alone);
    assert.deepEqual(pool.takeWoken(), ['w']);
    assert.ok(w.r >= 0);
  });

  it('hands pipes to waiters while draining (flows finishing at a graceful stop need them)', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool<string>(kernel, 65536, 1);
    const a = ends();
    pool.take(a, alone);
    const w = ends();
    pool.wait(w, 'w');
    pool.draining = true;
    pool.release(a, true, alone);
    assert.deepEqual(pool.takeWoken(), ['w']);
    pool.release(w, true, alone);
    assert.equal(pool.pooled, 0, 'closed while draining');
    assert.equal(kernel.openPipes(), 0);
  });

  it('a flow holding a pipe gets its second within its slot, and its slot passes on only with its last pipe', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool<string>(kernel, 65536, 2); // one slot
    const up = ends();
    const down = ends();
    assert.ok(pool.take(up, down));
    assert.equal(pool.slotsInUse, 1);
    assert.equal(pool.spent, true);
    // The reply way of the same flow: within the slot (a server blocked on its reply must not
    // hold the request's pipe forever while the reply waits for a pipe).
    assert.ok(pool.take(down, up));
    assert.equal(pool.inUse, 2);
    assert.equal(pool.slotsInUse, 1);
    const other = ends();
    pool.wait(other, 'other flow');
    pool.release(up, true, down);
    assert.deepEqual(pool.takeWoken(), [], 'the flow still holds a pipe: its slot stays');
    assert.equal(pool.pooled, 1);
    pool.release(down, true, up);
    assert.deepEqual(pool.takeWoken(), ['other flow'], 'its last pipe goes with the slot');
    assert.equal(pool.slotsInUse, 1);
    assert.equal(pool.inUse, 1);
    assert.ok(kernel.openPipes() <= 2, 'never more pipes than the budget');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PipePool, type PipeEnds } from '../../../../src/dataplane/tcp/splice/pipe-pool.js';
import { FakeKernel } from './fake-kernel.js';

const ends = (): PipeEnds => ({ r: -1, w: -1 });

describe('splice pipe pool (fake kernel)', () => {
  it('sizes new pipes, reuses empty ones, and never keeps more than the descriptor budget allows', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool(kernel, 256 * 1024, 2);
    const a = ends();
    const b = ends();
    assert.ok(pool.take(a));
    assert.ok(pool.take(b));
    assert.deepEqual(kernel.calls, ['pipe2', 'fcntl', 'pipe2', 'fcntl']);
    assert.equal(pool.inUse, 2);
    pool.release(a, true);
    assert.equal(pool.pooled, 1);
    assert.deepEqual(a, { r: -1, w: -1 });
    pool.release(b, true);
    assert.equal(pool.pooled, 2);
    // Three held at once (beyond the budget of 2): given back, they are kept only while held plus
    // pooled stays within it.
    const c = ends();
    const d = ends();
    const e = ends();
    pool.take(c);
    pool.take(d);
    pool.take(e);
    assert.equal(pool.inUse, 3);
    assert.equal(kernel.calls.filter((x) => x === 'pipe2').length, 3, 'two from the pool, one new');
    pool.release(c, true);
    assert.equal(pool.pooled, 0, 'held 2 + pooled 0 is the budget: closed');
    pool.release(d, true);
    assert.equal(pool.pooled, 1);
    pool.release(e, true);
    assert.equal(pool.pooled, 2);
    assert.equal(kernel.openPipes(), 2);
    pool.release(ends(), true); // nothing held: no-op
    assert.equal(pool.inUse, 0);
  });

  it('closes pipes given back while draining, and the idle ones at the end', () => {
    const kernel = new FakeKernel();
    const pool = new PipePool(kernel, 65536, 8);
    const a = ends();
    const b = ends();
    pool.take(a);
    pool.take(b);
    pool.release(a, true);
    pool.draining = true;
    pool.release(b, true);
    assert.equal(pool.pooled, 1);
    assert.equal(kernel.openPipes(), 1);
    pool.closeIdle();
    assert.equal(kernel.openPipes(), 0);
    assert.equal(pool.pooled, 0);
  });
});

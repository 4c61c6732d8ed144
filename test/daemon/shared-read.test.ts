// One kernel read shared by every explain: callers during a read wait for it, its result serves
// callers until it is maxAgeMs old, a failure is not kept.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SharedRead } from '../../src/daemon/shared-read.js';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

describe('SharedRead', () => {
  it('callers during a read share it; the result serves until it is maxAgeMs old', async () => {
    let now = 0;
    const reads: ReturnType<typeof deferred<number>>[] = [];
    const shared = new SharedRead(
      () => {
        const d = deferred<number>();
        reads.push(d);
        return d.promise;
      },
      1000,
      () => now,
    );
    const a = shared.get();
    const b = shared.get();
    assert.equal(reads.length, 1, 'one read for two callers');
    reads[0]!.resolve(7);
    assert.deepEqual(await Promise.all([a, b]), [7, 7]);
    now = 999;
    assert.equal(await shared.get(), 7);
    assert.equal(reads.length, 1, 'still fresh');
    now = 1000;
    const c = shared.get();
    assert.equal(reads.length, 2, 'stale: read again');
    reads[1]!.resolve(8);
    assert.equal(await c, 8);
  });

  it('a failed read is not kept: its callers get the error, the next caller reads again', async () => {
    const reads: ReturnType<typeof deferred<number>>[] = [];
    const shared = new SharedRead(
      () => {
        const d = deferred<number>();
        reads.push(d);
        return d.promise;
      },
      1000,
      () => 0,
    );
    const a = shared.get();
    const b = shared.get();
    reads[0]!.reject(new Error('nft: not found'));
    await assert.rejects(a, /nft: not found/);
    await assert.rejects(b, /nft: not found/);
    const c = shared.get();
    assert.equal(reads.length, 2);
    reads[1]!.resolve(3);
    assert.equal(await c, 3);
  });
});

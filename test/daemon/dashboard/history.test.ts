// Throughput history: rates from running totals, a ring of fixed size, never negative.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { History } from '../../../src/daemon/dashboard/history.js';

describe('dashboard history', () => {
  it('turns totals into per-second rates and keeps the last `capacity` samples, oldest first', () => {
    const h = new History(3);
    assert.equal(h.record(0, { bytesFromClient: 0, bytesFromServer: 0, flowsOpened: 0 }), undefined, 'the first reading has nothing to compare with');
    for (let s = 1; s <= 5; s++) h.record(s * 1000, { bytesFromClient: s * 100, bytesFromServer: s * 1000, flowsOpened: s * 2 });
    assert.deepEqual(
      h.samples().map((x) => [x.t, x.bytesFromClientPerSecond, x.bytesFromServerPerSecond, x.newFlowsPerSecond]),
      [
        [3000, 100, 1000, 2],
        [4000, 100, 1000, 2],
        [5000, 100, 1000, 2],
      ],
    );
  });

  it('divides by the real interval, and a total that went down (a listener stopped) counts as zero', () => {
    const h = new History(10);
    h.record(0, { bytesFromClient: 0, bytesFromServer: 0, flowsOpened: 0 });
    assert.equal(h.record(2000, { bytesFromClient: 1000, bytesFromServer: 0, flowsOpened: 0 })?.bytesFromClientPerSecond, 500);
    assert.equal(h.record(3000, { bytesFromClient: 10, bytesFromServer: 0, flowsOpened: 0 })?.bytesFromClientPerSecond, 0);
    assert.equal(h.record(3000, { bytesFromClient: 10, bytesFromServer: 0, flowsOpened: 0 }), undefined, 'no time passed');
  });
});

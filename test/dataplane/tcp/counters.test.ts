import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyTcpCounters, retireTcpCounters, sumTcpCounters, WORKER_LOST } from '../../../src/dataplane/tcp/counters.js';

describe('retireTcpCounters', () => {
  it('counts the flows a dead worker held as closed worker-lost, so accepted = the sum of closed', () => {
    const last = { ...emptyTcpCounters(), accepted: 195, active: 8, closed: { done: 180, 'idle-timeout': 7 } };
    const { counters, lost } = retireTcpCounters(last);
    assert.equal(lost, 8);
    assert.equal(counters.active, 0);
    assert.deepEqual(counters.closed, { done: 180, 'idle-timeout': 7, [WORKER_LOST]: 8 });
    const total = sumTcpCounters([counters, retireTcpCounters({ ...emptyTcpCounters(), accepted: 6, active: 2, closed: { done: 3, [WORKER_LOST]: 1 } }).counters]);
    assert.equal(total.accepted, Object.values(total.closed).reduce((a, b) => a + b, 0));
    assert.equal(total.closed[WORKER_LOST], 11);
  });

  it('a dead worker has no direction waiting for a pipe any more; the waits it counted stay in the sum', () => {
    const { counters } = retireTcpCounters({ ...emptyTcpCounters(), accepted: 4, active: 4, pipeWaits: 7, pipeWaiting: 2 });
    assert.equal(counters.pipeWaiting, 0);
    const total = sumTcpCounters([counters, { ...emptyTcpCounters(), pipeWaits: 3, pipeWaiting: 1 }]);
    assert.deepEqual([total.pipeWaits, total.pipeWaiting], [10, 1]);
  });

  it('leaves a worker with nothing open as it was', () => {
    const last = { ...emptyTcpCounters(), accepted: 3, closed: { done: 3 } };
    assert.deepEqual(retireTcpCounters(last), { counters: last, lost: 0 });
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { haproxyIdlePlan, IDLE_CONNECTIONS, tproxyIdlePlan } from '../../src/bench/workloads.js';

describe('bench: how each proxy holds the idle connections', () => {
  it('gives a tproxy the workers it needs for IDLE_CONNECTIONS when its workers hold fewer', () => {
    assert.equal(IDLE_CONNECTIONS, 10_000);
    // Splice at a hard limit of 20,000: 7,974 flows per worker, one worker by default on 2 cores.
    assert.deepEqual(tproxyIdlePlan({ perWorker: 7974, workers: 1 }), { connections: 10_000, workers: 2 });
    // An older build at 6 descriptors per flow: 3,322 per worker.
    assert.deepEqual(tproxyIdlePlan({ perWorker: 3322, workers: 1 }), { connections: 10_000, workers: 4 });
    // Enough already: as started.
    assert.deepEqual(tproxyIdlePlan({ perWorker: 7974, workers: 2 }), { connections: 10_000 });
    assert.deepEqual(tproxyIdlePlan({ perWorker: 100_000, workers: 1 }), { connections: 10_000 });
    assert.deepEqual(tproxyIdlePlan(undefined), { connections: 0 });
  });

  it('holds HAProxy (one process, two descriptors per connection) to 0.9 of its maxconn', () => {
    assert.deepEqual(haproxyIdlePlan(9950), { connections: 8955 });
    assert.deepEqual(haproxyIdlePlan(40_000), { connections: 10_000 });
  });
});

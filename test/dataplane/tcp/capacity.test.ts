import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectionCap } from '../../../src/dataplane/tcp/capacity.js';
import { emptyTcpCounters, sumTcpCounters } from '../../../src/dataplane/tcp/counters.js';

describe('TCP capacity and counters', () => {
  it('keeps two descriptors per flow plus a reserve under the file limit', () => {
    assert.equal(connectionCap(100_000, 1024), 480);
    assert.equal(connectionCap(100, 1_048_576), 100);
    assert.equal(connectionCap(100, 10), 1, 'never below one');
  });

  it('sums counters across workers, records included', () => {
    const a = { ...emptyTcpCounters(), accepted: 3, active: 1, closed: { done: 2 }, connectErrors: { ECONNREFUSED: 1 }, bytesFromClient: 10 };
    const b = { ...emptyTcpCounters(), accepted: 2, closed: { done: 1, 'idle-timeout': 1 }, refused: { 'not-intercepted': 1, loop: 0, limit: 2 } };
    const sum = sumTcpCounters([a, b]);
    assert.equal(sum.accepted, 5);
    assert.equal(sum.active, 1);
    assert.deepEqual(sum.closed, { done: 3, 'idle-timeout': 1 });
    assert.deepEqual(sum.connectErrors, { ECONNREFUSED: 1 });
    assert.deepEqual(sum.refused, { 'not-intercepted': 1, loop: 0, limit: 2 });
    assert.equal(sum.bytesFromClient, 10);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCounterBuffer, errorReasonOf, snapshotCounters, UDP_COUNTER_INDEX, UDP_ERROR_INDEX, UDP_ERROR_REASONS } from '../../../src/dataplane/udp/counters.js';

describe('UDP counters', () => {
  it('gives every counter and error reason its own slot and snapshots them as a plain object', () => {
    const slots = new Float64Array(createCounterBuffer());
    const indices = [...Object.values(UDP_COUNTER_INDEX), ...Object.values(UDP_ERROR_INDEX)];
    assert.equal(new Set(indices).size, slots.length);
    slots[UDP_COUNTER_INDEX.sessionsCreated] = 3;
    slots[UDP_COUNTER_INDEX.bytesFromServers] = 2 ** 40;
    slots[UDP_ERROR_INDEX['upstream-refused']] = 1;
    const snap = snapshotCounters(slots);
    assert.equal(snap.sessionsCreated, 3);
    assert.equal(snap.bytesFromServers, 2 ** 40, 'beyond 32 bits');
    assert.equal(snap.errors['upstream-refused'], 1);
    assert.deepEqual(Object.keys(snap.errors), [...UDP_ERROR_REASONS]);
    assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap, 'JSON-safe');
  });

  it('maps errno names to reasons by direction', () => {
    assert.equal(errorReasonOf('ECONNREFUSED', 'upstream'), 'upstream-refused');
    assert.equal(errorReasonOf('ECONNREFUSED', 'client'), 'client-refused');
    assert.equal(errorReasonOf('EHOSTUNREACH', 'upstream'), 'upstream-unreachable');
    assert.equal(errorReasonOf('EAGAIN', 'client'), 'client-busy');
    assert.equal(errorReasonOf('ENOBUFS', 'upstream'), 'upstream-busy');
    assert.equal(errorReasonOf('EMSGSIZE', 'upstream'), 'message-too-big');
    assert.equal(errorReasonOf('EBADF', 'upstream'), 'other');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLimits } from '../../../src/core/doctor/limits.js';
import type { DoctorInput } from '../../../src/core/doctor/input.js';

const input = (capacity: DoctorInput['capacity']): DoctorInput => ({ capacity }) as DoctorInput;

describe('doctor: process limits', () => {
  it('warns when the descriptor limit lowers a listener\'s connection cap, with the limit that lifts it', () => {
    const [f] = checkLimits(input([{ listener: 'web', configured: 100_000, perWorker: 3322, fileLimit: 20_000, descriptorsPerFlow: 6, reservedDescriptors: 64 }]));
    assert.equal(f?.id, 'limits.connections.web');
    assert.equal(f?.severity, 'warn');
    assert.match(f?.seen ?? '', /at most 3322 connections per worker, not the configured 100000: the descriptor limit 20000/);
    assert.equal(f?.fix, 'raise the limit to 600064 (LimitNOFILE=600064 in the systemd unit, or ulimit -n 600064 before tproxy run), or lower maxConnections to 3322');
  });

  it('passes when the limit allows the configured cap, and says nothing without capacity (a snapshot)', () => {
    assert.equal(checkLimits(input([{ listener: 'main', configured: 1000, perWorker: 1000, fileLimit: 1_048_576, descriptorsPerFlow: 6, reservedDescriptors: 64 }]))[0]?.severity, 'pass');
    assert.deepEqual(checkLimits(input(undefined)), []);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkLimits } from '../../../src/core/doctor/limits.js';
import type { DoctorInput } from '../../../src/core/doctor/input.js';

const input = (capacity: DoctorInput['capacity']): DoctorInput => ({ capacity }) as DoctorInput;

describe('doctor: process limits', () => {
  it('warns when the descriptor limit lowers a listener\'s connection cap, with the limit that lifts it', () => {
    const [f] = checkLimits(input([{ listener: 'web', configured: 100_000, perWorker: 7974, fileLimit: 20_000, descriptorsPerFlow: 2, sharedPipes: 1994, reservedDescriptors: 64, neededFileLimit: 250_064 }]));
    assert.equal(f?.id, 'limits.connections.web');
    assert.equal(f?.severity, 'warn');
    assert.equal(f?.seen, 'listener web: at most 7974 connections per worker, not the configured 100000: the descriptor limit 20000 (RLIMIT_NOFILE) holds (20000 - 64 reserved) at 2 per flow plus 2 for each of 1994 pipes the flows with bytes in flight share');
    assert.equal(f?.fix, 'raise the limit to 250064 (LimitNOFILE=250064 in the systemd unit, or ulimit -n 250064 before tproxy run), or lower maxConnections to 7974');
    const [stream] = checkLimits(input([{ listener: 'web', configured: 100_000, perWorker: 9968, fileLimit: 20_000, descriptorsPerFlow: 2, sharedPipes: 0, reservedDescriptors: 64, neededFileLimit: 200_064 }]));
    assert.match(stream?.seen ?? '', /holds \(20000 - 64 reserved\) at 2 per flow$/);
  });

  it('passes when the limit allows the configured cap, and says nothing without capacity (a snapshot)', () => {
    assert.equal(checkLimits(input([{ listener: 'main', configured: 1000, perWorker: 1000, fileLimit: 1_048_576, descriptorsPerFlow: 2, sharedPipes: 250, reservedDescriptors: 64, neededFileLimit: 2564 }]))[0]?.severity, 'pass');
    assert.deepEqual(checkLimits(input(undefined)), []);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectionCap, describeCapacity, descriptorsForFlows, descriptorsPerFlow, expectedTcpCapacity, MIN_SHARED_PIPES, reserveTcpFlows, sharedPipes } from '../../../src/dataplane/tcp/capacity.js';
import { DescriptorBudget } from '../../../src/sys/descriptor-budget.js';
import { emptyTcpCounters, sumTcpCounters } from '../../../src/dataplane/tcp/counters.js';

describe('TCP capacity and counters', () => {
  it('fits the cap to the descriptors available: two sockets per flow, and for splice the shared pipes', () => {
    assert.equal(descriptorsPerFlow('splice'), 2);
    assert.equal(descriptorsPerFlow('stream'), 2);
    assert.equal(descriptorsPerFlow('uring'), 2);
    // Pipes: two per flow for small caps, MIN_SHARED_PIPES up to four times that, then a quarter.
    assert.equal(sharedPipes('splice', 10), 20);
    assert.equal(sharedPipes('splice', 100), MIN_SHARED_PIPES);
    assert.equal(sharedPipes('splice', 10_000), 2500);
    assert.equal(sharedPipes('splice', 10_001), 2501, 'rounded up');
    assert.equal(sharedPipes('stream', 10_000), 0);
    assert.equal(sharedPipes('uring', 10_000), 0);
    assert.equal(descriptorsForFlows('splice', 10_000), 25_000);
    assert.equal(descriptorsForFlows('stream', 10_000), 20_000);
    assert.equal(connectionCap(100_000, 960, 'stream'), 480);
    assert.equal(connectionCap(100_000, 960, 'splice'), 384, '384 sockets x 2 + 96 pipes x 2 = 960');
    assert.equal(connectionCap(100_000, 959, 'splice'), 383);
    assert.equal(descriptorsForFlows('splice', 383), 766 + 192);
    assert.equal(connectionCap(100, 1_048_576, 'splice'), 100);
    assert.equal(connectionCap(100, 10, 'splice'), 1, 'never below one');
    // The largest cap that fits, for every budget: the next one up would not.
    for (let available = 6; available < 2000; available += 7) {
      const cap = connectionCap(100_000, available, 'splice');
      assert.ok(descriptorsForFlows('splice', cap) <= available, `${cap} fits ${available}`);
      assert.ok(descriptorsForFlows('splice', cap + 1) > available, `${cap + 1} does not fit ${available}`);
    }
  });

  it('takes the flows from the descriptor budget, a share of it when UDP shares the process, and gives them back', () => {
    const budget = DescriptorBudget.create({ limit: 1024, open: 0, slack: 64, childReserve: 0, stopReserve: 0 });
    const whole = reserveTcpFlows(budget, 100_000, 'splice');
    assert.equal(whole.maxConnections, 384);
    assert.equal(budget.snapshot().byConsumer.tcp.inUse, 960, 'sockets and shared pipes');
    whole.release();
    whole.release();
    assert.equal(budget.snapshot().inUse, 0, 'released once');
    const half = reserveTcpFlows(budget, 100_000, 'stream', 0.5);
    assert.equal(half.maxConnections, 240);
    assert.equal(budget.available('udp'), 480);
  });

  it('says when the file limit lowers the configured cap, by how much, and the limit that lifts it', () => {
    const limited = expectedTcpCapacity(100_000, 20_000, 'splice');
    assert.deepEqual(limited, { configured: 100_000, perWorker: 7974, limitedBy: 'descriptors', fileLimit: 20_000, descriptorsPerFlow: 2, sharedPipes: 1994, neededFileLimit: 250_064 });
    assert.equal(
      describeCapacity(limited),
      'at most 7974 connections per worker, not the configured 100000: the descriptor limit 20000 (RLIMIT_NOFILE) holds (20000 - 64 reserved and what is open at start) at 2 per flow plus 2 for each of 1994 pipes the flows with bytes in flight share; raise it (LimitNOFILE= in the systemd unit, ulimit -n) to 250064 for the configured cap',
    );
    const uring = expectedTcpCapacity(100_000, 20_000, 'uring');
    assert.equal(uring.perWorker, 9968);
    assert.match(describeCapacity(uring), /at 2 per flow; raise it .* to 200064 for the configured cap$/);
    const stream = expectedTcpCapacity(1000, 1_048_576, 'stream');
    assert.equal(stream.limitedBy, 'configured');
    assert.equal(describeCapacity(stream), 'at most 1000 connections per worker (as configured)');
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

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectionCap, describeCapacity, descriptorsPerFlow, expectedTcpCapacity, reserveTcpFlows } from '../../../src/dataplane/tcp/capacity.js';
import { DescriptorBudget } from '../../../src/sys/descriptor-budget.js';
import { emptyTcpCounters, sumTcpCounters } from '../../../src/dataplane/tcp/counters.js';

describe('TCP capacity and counters', () => {
  it('fits the cap to the descriptors available, six per splice flow and two per stream flow', () => {
    assert.equal(descriptorsPerFlow('splice'), 6);
    assert.equal(descriptorsPerFlow('stream'), 2);
    assert.equal(connectionCap(100_000, 960, 2), 480);
    assert.equal(connectionCap(100, 1_048_576, 6), 100);
    assert.equal(connectionCap(100, 10, 6), 1, 'never below one');
  });

  it('takes the flows from the descriptor budget, a share of it when UDP shares the process, and gives them back', () => {
    const budget = DescriptorBudget.create({ limit: 1024, open: 0, slack: 64, childReserve: 0, stopReserve: 0 });
    const whole = reserveTcpFlows(budget, 100_000, 'splice');
    assert.equal(whole.maxConnections, 160);
    assert.equal(budget.snapshot().byConsumer.tcp.inUse, 960);
    whole.release();
    whole.release();
    assert.equal(budget.snapshot().inUse, 0, 'released once');
    const half = reserveTcpFlows(budget, 100_000, 'stream', 0.5);
    assert.equal(half.maxConnections, 240);
    assert.equal(budget.available('udp'), 480);
  });

  it('says when the file limit lowers the configured cap, by how much, and the limit that lifts it', () => {
    const limited = expectedTcpCapacity(100_000, 20_000, 'splice');
    assert.deepEqual(limited, { configured: 100_000, perWorker: 3322, limitedBy: 'descriptors', fileLimit: 20_000, descriptorsPerFlow: 6 });
    assert.match(describeCapacity(limited), /^at most 3322 connections per worker, not the configured 100000: the descriptor limit 20000 .* to 600064 for the configured cap$/);
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

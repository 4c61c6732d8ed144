// The descriptor budget as one UDP loop uses it: what it takes and gives back is counted in shared
// memory, and what a loop that ended without an orderly shutdown still held is given back once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countedLoopBudget, reclaimLoopBudget } from '../../../src/dataplane/udp/loop-budget.js';
import { DescriptorBudget } from '../../../src/sys/descriptor-budget.js';

const udpInUse = (budget: DescriptorBudget): number => budget.snapshot().byConsumer.udp.inUse;

describe('UDP loop budget', () => {
  it('counts what the loop takes and gives back, refusals not at all', () => {
    const budget = DescriptorBudget.create({ limit: 200, open: 0, slack: 0, childReserve: 0, stopReserve: 0 });
    const held = new Int32Array(new SharedArrayBuffer(8));
    const loop = countedLoopBudget(budget, held, 1);
    assert.equal(loop.acquire('udp', 3), true);
    assert.equal(loop.acquire('udp'), true);
    loop.release('udp', 2);
    assert.equal(loop.acquire('udp', 500), false, 'refused: more than the budget holds');
    assert.equal(held[1], 2);
    assert.equal(held[0], 0, 'only its own slot');
    assert.equal(udpInUse(budget), 2);
    assert.equal(loop.available('udp'), budget.available('udp'));
  });

  it('gives back what a loop still held when its thread ended, once, and leaves other entries alone', () => {
    const budget = DescriptorBudget.create({ limit: 200, open: 0, slack: 0, childReserve: 0, stopReserve: 0 });
    const held = new Int32Array(new SharedArrayBuffer(4));
    assert.equal(budget.acquire('udp'), true, "the relay's own entry (its wake-up eventfd)");
    const loop = countedLoopBudget(budget, held, 0);
    assert.equal(loop.acquire('udp', 11), true);
    // The thread is terminated here: nothing of the loop gives anything back.
    assert.equal(reclaimLoopBudget(budget, held, 0), 11);
    assert.equal(udpInUse(budget), 1, "only the relay's own entry stays");
    assert.equal(reclaimLoopBudget(budget, held, 0), 0, 'nothing twice');
    assert.equal(udpInUse(budget), 1);
  });

  it('gives back nothing after an orderly shutdown', () => {
    const budget = DescriptorBudget.create({ limit: 200, open: 0 });
    const held = new Int32Array(new SharedArrayBuffer(4));
    const loop = countedLoopBudget(budget, held, 0);
    assert.equal(loop.acquire('udp', 4), true);
    loop.release('udp', 4);
    assert.equal(reclaimLoopBudget(budget, held, 0), 0);
    assert.equal(udpInUse(budget), 0);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { DescriptorBudget, DESCRIPTORS_PER_CHILD } from '../../src/sys/descriptor-budget.js';

describe('DescriptorBudget', () => {
  const make = (): DescriptorBudget => DescriptorBudget.create({ limit: 200, open: 20, slack: 20, childReserve: 40, stopReserve: 20 });

  it('hands out the limit less what is open and the slack, keeping the reserves from the data plane', () => {
    const budget = make();
    assert.equal(budget.snapshot().capacity, 160);
    assert.equal(budget.available('udp'), 100);
    assert.equal(budget.acquire('udp', 100), true);
    assert.equal(budget.acquire('udp'), false, 'the data plane stops at the reserves');
    assert.equal(budget.acquire('admin'), false);
    assert.equal(budget.acquire('child', 40), true, 'child processes use their reserve');
    assert.equal(budget.acquire('child'), false, 'but not the one kept for the rule removal');
    budget.stopping();
    assert.equal(budget.acquire('child', 20), true, 'the rule removal at stop gets the last of it');
    assert.equal(budget.acquire('child'), false);
    const s = budget.snapshot();
    assert.equal(s.inUse, 160);
    assert.deepEqual(s.byConsumer.udp, { inUse: 100, refused: 1 });
    assert.deepEqual(s.byConsumer.child, { inUse: 60, refused: 2 });
    assert.deepEqual(s.byConsumer.admin, { inUse: 0, refused: 1 });
  });

  it('gets back what is released', () => {
    const budget = make();
    assert.ok(budget.acquire('tcp', 60));
    budget.release('tcp', 60);
    assert.equal(budget.snapshot().inUse, 0);
    assert.equal(budget.available('tcp'), 100);
  });

  it('never goes below zero capacity when more is open than the limit allows', () => {
    const budget = DescriptorBudget.create({ limit: 50, open: 100 });
    assert.equal(budget.snapshot().capacity, 0);
    assert.equal(budget.acquire('child', DESCRIPTORS_PER_CHILD), false);
  });

  it('is one budget across threads: a worker thread takes from the same counts', async () => {
    const budget = make();
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const slots = new Int32Array(workerData);
       let taken = 0;
       // The same compare-and-swap as acquire(), on the shared buffer: 30 descriptors for "udp".
       for (let i = 0; i < 30; i++) { const used = Atomics.load(slots, 4); if (Atomics.compareExchange(slots, 4, used, used + 1) === used) taken++; else i--; }
       Atomics.add(slots, 6, taken);
       parentPort.postMessage(taken);`,
      { eval: true, workerData: budget.buffer },
    );
    const taken = await new Promise<number>((resolve) => worker.once('message', resolve));
    await worker.terminate();
    assert.equal(taken, 30);
    assert.equal(DescriptorBudget.attach(budget.buffer).snapshot().byConsumer.udp.inUse, 30);
    assert.equal(budget.available('udp'), 70);
  });
});

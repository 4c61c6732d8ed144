import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { ENGINE_THREAD_LIMITS } from '../../../../src/dataplane/tcp/splice/thread-limits.js';

// A burst of long-lived objects, as a burst of accepted flows makes (each retained until the end),
// then the young generation's committed size: what the thread keeps resident after the burst.
const BURST = `
const { parentPort } = require('node:worker_threads');
const v8 = require('node:v8');
const kept = [];
for (let i = 0; i < 60000; i++) kept.push({ id: i, up: { r: -1, w: -1, bytes: 0 }, down: { r: -1, w: -1, bytes: 0 }, client: { address: '198.51.100.' + (i % 250), port: i } });
const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
parentPort.postMessage({ youngBytes: young.space_size, kept: kept.length });
`;

async function youngAfterBurst(resourceLimits: ResourceLimits | undefined): Promise<number> {
  const worker = new Worker(BURST, { eval: true, ...(resourceLimits ? { resourceLimits } : {}) });
  try {
    const [message] = (await Promise.race([
      new Promise((resolve) => worker.once('message', (m) => resolve([m]))),
      new Promise((_, reject) => worker.once('error', reject)),
    ])) as [{ youngBytes: number; kept: number }];
    assert.equal(message.kept, 60000);
    return message.youngBytes;
  } finally {
    await worker.terminate();
  }
}

describe('TCP engine thread limits', () => {
  it('a burst of long-lived objects leaves the young generation at its cap (V8 would keep 8 MiB semi-spaces)', async () => {
    const cap = (ENGINE_THREAD_LIMITS.maxYoungGenerationSizeMb ?? 0) * 2 ** 20;
    assert.ok(cap > 0 && cap <= 4 * 2 ** 20, 'a young generation of at most 4 MiB');
    const capped = await youngAfterBurst(ENGINE_THREAD_LIMITS);
    assert.ok(capped <= cap, `young generation ${capped} bytes after the burst, above the cap ${cap}`);
    // Without the limit the same burst grows it past the cap: the limit is what holds it.
    const free = await youngAfterBurst(undefined);
    assert.ok(free > cap, `without the limit the burst left ${free} bytes: the test would not see a missing cap`);
  });
});

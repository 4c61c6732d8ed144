import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestartWindow } from '../../src/dataplane/restart-window.js';

describe('RestartWindow', () => {
  it('allows maxPerMinute restarts within any minute, then none until the oldest is a minute old', () => {
    let now = 0;
    const window = new RestartWindow(3, () => now);
    assert.deepEqual([window.allow(), window.allow(), window.allow(), window.allow()], [true, true, true, false]);
    now = 59_999;
    assert.equal(window.allow(), false);
    now = 60_000;
    assert.equal(window.allow(), true, 'the first three are a minute old');
  });

  it('backs off 100 ms, doubling with the restarts of the minute, at most 5 s', () => {
    const now = 0;
    const window = new RestartWindow(20, () => now);
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      window.allow();
      delays.push(window.backoffMs());
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { engineClock, EngineTimers } from '../../../../src/dataplane/tcp/splice/timers.js';

// V8's own answer: is this value a Smi (kept in an object's field, no heap number of its own)?
setFlagsFromString('--allow-natives-syntax');
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- natives syntax only parses in a function body made at runtime
const isSmi = new Function('x', 'return %IsSmi(x)') as (x: number) => boolean;

describe('splice engine clock', () => {
  it('counts milliseconds from the start plus an hour, moving with Date.now', () => {
    const now = engineClock(Date.now() - 1234)();
    assert.ok(Number.isInteger(now));
    assert.ok(now >= 3_600_000 + 1234 && now < 3_600_000 + 1234 + 60_000, `${now}`);
  });

  it('gives Smis (Date.now() arithmetic gives a heap number per value), and past 2^31 ms correct values', () => {
    const start = Date.now() - 5;
    assert.equal(isSmi(Date.now() - start + 3_600_000), false, 'the plain arithmetic is boxed: the test would not see a regression');
    assert.equal(isSmi(engineClock(start)()), true);
    const late = engineClock(Date.now() - 2 ** 31)();
    assert.ok(late >= 2 ** 31 + 3_600_000, `${late}: no wrap past 24 days`);
  });

  it('timers whose last run is 0 are due at the engine start, as with Date.now()', () => {
    const now = engineClock()();
    const timers = new EngineTimers(60_000, 1000);
    assert.equal(timers.scanDue(now), true);
    assert.equal(timers.countersDue(now), true);
    assert.equal(timers.idleDue(now), true);
  });
});

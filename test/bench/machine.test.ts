import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cpuCeiling, machineSample, machineTable, summarizeMachine } from '../../src/bench/machine.js';

describe('machine CPU per unit of work', () => {
  it('divides busy CPU by the work and reports the busy share', () => {
    assert.deepEqual(machineSample({ busySeconds: 3, idleSeconds: 1, stealSeconds: 0 }, { count: 30_000, unit: 'request' }), { busy: 0.75, cpuPerUnit: 1e-4, unit: 'request' });
    assert.equal(machineSample({ busySeconds: 3, idleSeconds: 1, stealSeconds: 0 }, { count: 0, unit: 'request' }), undefined);
    assert.deepEqual(machineSample({ busySeconds: 3, idleSeconds: 1, stealSeconds: 0 }, { count: 2, unit: 'GB' }, { cpuSeconds: 1, systemSeconds: 0.5 })?.proxy, { cpuPerUnit: 0.5, systemPerUnit: 0.25 });
  });

  it('gives forwarding over proxy as the ceiling, and tabulates per request and per GB', () => {
    const fwd = summarizeMachine([{ busy: 0.9, cpuPerUnit: 50e-6, unit: 'request' }, { busy: 0.95, cpuPerUnit: 60e-6, unit: 'request' }]);
    const proxy = summarizeMachine([{ busy: 1, cpuPerUnit: 110e-6, unit: 'request', proxy: { cpuPerUnit: 60e-6, systemPerUnit: 45e-6 } }]);
    assert.ok(fwd && proxy);
    assert.equal(cpuCeiling(fwd, proxy), 0.5);
    assert.equal(cpuCeiling(undefined, proxy), null);
    const gb = summarizeMachine([{ busy: 1, cpuPerUnit: 1.5, unit: 'GB' }]);
    assert.ok(gb);
    const text = machineTable({ conns: { machine: { forwarding: fwd, tproxy: proxy } }, stream: { machine: { tproxy: gb } }, idle: { machine: {} } });
    assert.match(text, /^conns\s+55 us\/request \(93% busy\)\s+110 us\/request \(100% busy; proxy 60, 45 in kernel\)\s+-\s+0\.50x\s+-/m);
    assert.match(text, /^stream\s+-\s+1\.50 s\/GB \(100% busy\)/m);
    assert.doesNotMatch(text, /^idle/m);
  });

  it('adds the C reference relay column and its ceiling only when it ran', () => {
    const fwd = summarizeMachine([{ busy: 0.75, cpuPerUnit: 0.6, unit: 'GB' }]);
    const tproxy = summarizeMachine([{ busy: 0.8, cpuPerUnit: 1.2, unit: 'GB', proxy: { cpuPerUnit: 0.3, systemPerUnit: 0.25 } }]);
    const reference = summarizeMachine([{ busy: 0.8, cpuPerUnit: 1.0, unit: 'GB', proxy: { cpuPerUnit: 0.26, systemPerUnit: 0.26 } }]);
    assert.ok(fwd && tproxy && reference);
    const without = machineTable({ stream: { machine: { forwarding: fwd, tproxy } } });
    assert.doesNotMatch(without, /reference/);
    const text = machineTable({ stream: { machine: { forwarding: fwd, tproxy, reference } } });
    assert.match(text.split('\n')[0] ?? '', /C reference relay .*CPU ceiling reference \/ fwd/);
    assert.match(text, /^stream\s+0\.60 s\/GB \(75% busy\)\s+1\.20 s\/GB .*-\s+1\.00 s\/GB \(80% busy; proxy 0\.26, 0\.26 in kernel\)\s+0\.50x\s+-\s+0\.60x\s*$/m);
  });
});

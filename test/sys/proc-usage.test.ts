import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { machineCpu, machineCpuSince, parseMachineCpu, parseProcStat, parseVmRssBytes, processTree, usageOf } from '../../src/sys/proc-usage.js';

describe('process usage from /proc', () => {
  it('parses /proc/PID/stat, command names with spaces and parentheses included', () => {
    const line = '4242 (node (x) y) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 11 0 1234 1000000 5000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0';
    assert.deepEqual(parseProcStat(line), { pid: 4242, ppid: 17, cpuSeconds: 3.25, systemSeconds: 0.75 });
  });

  it('reads VmRSS in bytes, 0 when absent', () => {
    assert.equal(parseVmRssBytes('Name:\tnode\nVmRSS:\t   51200 kB\nThreads:\t11\n'), 51200 * 1024);
    assert.equal(parseVmRssBytes('Name:\tkworker\n'), 0);
  });

  it('finds this process in its own tree and measures it', () => {
    assert.deepEqual(processTree(process.pid).slice(0, 1), [process.pid]);
    const usage = usageOf([process.pid]);
    assert.ok(usage.rssBytes > 0 && usage.descriptors > 0 && usage.cpuSeconds >= 0);
    assert.deepEqual(usageOf([2 ** 22 + 1]), { cpuSeconds: 0, systemSeconds: 0, rssBytes: 0, descriptors: 0 });
  });

  it('reads the machine\'s CPU time from /proc/stat: busy includes irq and softirq, idle includes iowait', () => {
    const text = 'cpu  100 20 300 4000 50 6 70 8 0 0\ncpu0 50 10 150 2000 25 3 35 4 0 0\nintr 1\n';
    assert.deepEqual(parseMachineCpu(text), { busySeconds: 4.96, idleSeconds: 40.5, stealSeconds: 0.08 });
    assert.throws(() => parseMachineCpu('intr 1\n'), /no cpu line/);
    const before = machineCpu();
    const since = machineCpuSince(before);
    assert.ok(since.busySeconds >= 0 && since.idleSeconds >= 0);
  });
});

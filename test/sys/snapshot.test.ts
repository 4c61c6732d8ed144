import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandRunner, CommandResult, RunOptions } from '../../src/sys/exec.js';
import { takeSnapshot } from '../../src/sys/snapshot.js';

/** A fake runner: canned output per command, and the argv of every call. */
export function fakeRunner(outputs: Record<string, Partial<CommandResult>>): CommandRunner & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    run(argv: readonly string[], _options?: RunOptions): Promise<CommandResult> {
      const key = argv.join(' ');
      calls.push(key);
      const found = Object.entries(outputs).find(([prefix]) => key.startsWith(prefix));
      return Promise.resolve({ stdout: '', stderr: '', exitCode: 0, ...(found ? found[1] : { exitCode: 127, stderr: `${argv[0] ?? ''}: not found` }) });
    },
  };
}

describe('takeSnapshot', () => {
  it('gathers every source through the runner and keeps raw outputs', async () => {
    const runner = fakeRunner({
      'nft -j list ruleset': { stdout: '{"nftables":[{"metainfo":{}}]}' },
      'ip -j -4 rule show': { stdout: '[{"priority":0,"src":"all","table":"local"}]' },
      'ip -j -6 rule show': { stdout: '' },
      'ip -j -4 route show table all': { stdout: '[]' },
      'ip -j -6 route show table all': { stdout: 'not json' },
      'ip -j addr show': { stdout: '[]' },
      'ss -H -O': { stdout: 'tcp LISTEN 0 128 0.0.0.0:8000 0.0.0.0:* <-> inet-sockopt: ( transparent)\n' },
      'iptables-save': { stdout: '*mangle\nCOMMIT\n' },
      sysctl: { stdout: 'net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 0\n' },
    });
    const s = await takeSnapshot(runner, { now: () => new Date('2026-01-01T00:00:00Z') });
    assert.equal(s.format, 'tproxy-snapshot');
    assert.equal(s.takenAt, '2026-01-01T00:00:00.000Z');
    assert.deepEqual(s.ipRules.ipv6, []);
    assert.equal(s.routes.ipv6, null);
    assert.match(s.errors['routes.ipv6'] ?? '', /invalid JSON/);
    assert.equal(s.iptables.ipv4, '*mangle\nCOMMIT\n');
    assert.equal(s.iptables.ipv6, undefined, 'ip6tables-save is missing: not an error');
    assert.equal(s.errors['iptables.ipv6'], undefined);
    assert.deepEqual(s.sysctls, { 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '0' });
    assert.ok(runner.calls.includes('ss -H -O -t -u -a -n -p -e --inet-sockopt'));
  });

  it('records a failing source and goes on', async () => {
    const s = await takeSnapshot(fakeRunner({ 'nft -j': { exitCode: 1, stderr: 'Operation not permitted\n' } }));
    assert.equal(s.nft, null);
    assert.match(s.errors.nft ?? '', /exited with 1: Operation not permitted/);
  });

  it('gathers what doctor needs: kernel probes in one nft --check, /proc files, capabilities, table comments', async () => {
    const runner = fakeRunner({
      'nft --check -f -': { stdout: '' },
      'nft list ruleset': { stdout: 'table inet tproxy_rules {\n\tcomment "tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000"\n\tchain prerouting {\n\t}\n}\n' },
      'ss -H -O': { stdout: 'tcp LISTEN 0 128 0.0.0.0:8000 0.0.0.0:* users:(("node",pid=42,fd=3)) <-> inet-sockopt: ( transparent)\n' },
      'grep -s -H ^CapEff:': { stdout: '/proc/42/status:CapEff:\t000001ffffffffff\n' },
      'grep -s -H  /proc/modules': { exitCode: 2, stdout: '/proc/net/ip_tables_targets:TPROXY\n/proc/net/ip_tables_targets:MARK\n/proc/net/ip_tables_matches:socket\n' },
      'grep -E': { stdout: 'Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n' },
      'sysctl -e -a': { stdout: 'net.ipv4.conf.eth0.rp_filter = 1\n' },
    });
    const s = await takeSnapshot(runner);
    assert.equal(runner.calls.filter((c) => c.startsWith('nft --check')).length, 1, 'one transaction while the kernel accepts it');
    assert.deepEqual(Object.values(s.host?.probes ?? {}).map((p) => p.ok), [true, true, true, true]);
    assert.equal(s.host?.modules, undefined, 'no /proc/modules: a kernel without loadable modules');
    assert.equal(s.host?.xtables?.targets4, 'TPROXY\nMARK');
    assert.equal(s.host?.xtables?.matches6, '');
    assert.deepEqual(s.host?.self, { uid: 0, capEff: '000001ffffffffff' });
    assert.deepEqual(s.host?.processes, { 42: { capEff: '000001ffffffffff' } });
    assert.deepEqual(s.host?.tableComments, { 'inet tproxy_rules': 'tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000' });
    assert.equal(s.sysctls['net.ipv4.conf.eth0.rp_filter'], '1');
  });

  it('asks the kernel feature by feature only when it refuses the probe table', async () => {
    const runner = fakeRunner({ 'nft --check -f -': { exitCode: 1, stderr: 'Error: Could not process rule: No such file or directory\n' } });
    const s = await takeSnapshot(runner);
    assert.equal(runner.calls.filter((c) => c.startsWith('nft --check')).length, 5);
    assert.deepEqual(s.host?.probes?.['nft.socket'], { ok: false, detail: 'Error: Could not process rule: No such file or directory' });
  });
});

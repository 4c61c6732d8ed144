import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RulesController } from '../../src/control/apply.js';
import { chooseBackend } from '../../src/control/backend.js';
import { isTproxyError } from '../../src/core/errors.js';
import { singleListenerRules } from '../../src/core/rules/config.js';
import { planRules } from '../../src/core/rules/plan.js';
import { EMPTY_IPTABLES_STATE, plannedIptablesState, renderIptablesTransition } from '../../src/core/rules/render-iptables.js';
import { FakeRunner } from '../helpers/fake-runner.js';

const plan = planRules(singleListenerRules([{ transport: 'udp', ports: [{ from: 53, to: 53 }] }], { families: [4] }));
const EMPTY_MANGLE = '*mangle\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

describe('iptables backend (fake runner)', () => {
  it('tests, then applies with iptables-legacy-restore --noflush, the exact input, one transaction per family', async () => {
    let applied = false;
    const save = (): { stdout: string } => ({
      stdout: applied ? `*mangle\n:PREROUTING ACCEPT [0:0]\n:TPROXY_RULES_PRE - [0:0]\n:TPROXY_RULES_DIVERT - [0:0]\n${plannedIptablesState(plan, 4).jumps.map((j) => `[0:0] -A ${j.chain} ${j.spec}`).join('\n')}\n${plannedIptablesState(plan, 4).chains.flatMap((c) => c.specs.map((s) => `[0:0] -A ${c.name} ${s}`)).join('\n')}\nCOMMIT\n` : EMPTY_MANGLE,
    });
    const rule = { priority: 9000, src: 'all', fwmark: '0x1', fwmask: '0x1', table: '100' };
    const route = { type: '2', dst: 'default', dev: 'lo', table: '100' };
    const runner = new FakeRunner([
      ['iptables-legacy-restore -w 10 --noflush --test', {}],
      ['iptables-legacy-restore -w 10 --noflush', () => ((applied = true), {})],
      ['iptables-legacy-save -c -t mangle', () => save()],
      ['ip6tables-legacy-save -c -t mangle', { stdout: EMPTY_MANGLE }],
      ['iptables-legacy-save -c', () => save()],
      ['ip -N -j -4 rule show', () => ({ stdout: JSON.stringify(applied ? [rule] : []) })],
      ['ip -N -j -4 route show table all', () => ({ stdout: JSON.stringify(applied ? [route] : []) })],
    ]);
    const result = await new RulesController(runner, { backend: 'iptables-legacy' }).apply(plan);
    assert.equal(result.changed, true);
    const input = renderIptablesTransition(EMPTY_IPTABLES_STATE, plannedIptablesState(plan, 4));
    assert.deepEqual(runner.calls.slice(0, 9), [
      { argv: ['iptables-legacy-restore', '-w', '10', '--noflush', '--test'], input },
      { argv: ['iptables-legacy-save', '-c', '-t', 'mangle'] },
      { argv: ['ip6tables-legacy-save', '-c', '-t', 'mangle'] },
      { argv: ['ip', '-N', '-j', '-4', 'rule', 'show'] },
      { argv: ['ip', '-N', '-j', '-4', 'route', 'show', 'table', 'all'] },
      { argv: ['iptables-legacy-save', '-c'] },
      { argv: ['ip', '-4', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100'] },
      { argv: ['ip', '-4', 'rule', 'add', 'fwmark', '0x00000001/0x00000001', 'lookup', '100', 'priority', '9000'] },
      { argv: ['iptables-legacy-restore', '-w', '10', '--noflush'], input },
    ]);
    assert.match(input, /-A TPROXY_RULES_PRE -p udp -m udp --dport 53 -m comment --comment "tproxy: intercept udp ipv4" -j TPROXY --on-port 8000 --on-ip 0.0.0.0 --tproxy-mark 0x1\/0x1\n/);
    assert.ok(!runner.lines().some((l) => l.startsWith('ip6tables-legacy-restore')), 'nothing to do for IPv6');
  });

  it('explains a kernel without xt_TPROXY', async () => {
    const runner = new FakeRunner([['iptables-restore -w 10 --noflush --test', { exitCode: 2, stderr: 'iptables-restore v1.8.9 (legacy): Couldn\'t load target `TPROXY\':No such file or directory\n' }]]);
    await assert.rejects(new RulesController(runner, { backend: 'iptables' }).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_KERNEL_FEATURE') && /CONFIG_NETFILTER_XT_TARGET_TPROXY \(module xt_TPROXY\)/.test(e.message));
  });

  it('explains a missing privilege', async () => {
    const runner = new FakeRunner([['iptables-nft-restore', { exitCode: 4, stderr: 'iptables-nft-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n' }]]);
    await assert.rejects(new RulesController(runner, { backend: 'iptables-nft' }).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_PRIVILEGE'));
  });
});

describe('backend selection', () => {
  const has = (...present: string[]) => (binary: string): boolean => present.includes(binary);
  it('prefers nftables, falls back to iptables-restore, and says what to install', () => {
    assert.equal(chooseBackend('auto', has('nft', 'iptables-restore')), 'nft');
    assert.equal(chooseBackend('auto', has('iptables-restore')), 'iptables');
    assert.throws(() => chooseBackend('auto', has()), (e: unknown) => isTproxyError(e, 'ERR_COMMAND_MISSING') && /neither `nft` nor `iptables-restore` was found on PATH: install one, e.g. nftables: .*nftables/.test(e.message));
  });
  it('honours a forced backend when its binary exists', () => {
    assert.equal(chooseBackend('iptables-legacy', has('nft', 'iptables-legacy-restore')), 'iptables-legacy');
    assert.throws(() => chooseBackend('iptables-nft', has('nft')), (e: unknown) => isTproxyError(e, 'ERR_COMMAND_MISSING') && /`iptables-nft-restore` was not found on PATH \(needed by --backend iptables-nft\): install it: .*iptables/.test(e.message));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkProbes } from '../../../src/core/doctor/probes.js';
import { formatReport, reportToJson } from '../../../src/core/doctor/report.js';
import { checkRules } from '../../../src/core/doctor/rules.js';
import { rulesConfigFrom } from '../../../src/cli/selection.js';
import { planRules } from '../../../src/core/rules/plan.js';
import { EMPTY_IPTABLES_STATE, plannedIptablesState, renderIptablesTransition } from '../../../src/core/rules/render-iptables.js';
import { FLAGS, addForeignChain, fails, healthy, input, nftItems, only, report, withoutRule } from '../../helpers/doctor.js';
import { nftJsonOf } from '../../helpers/fake-host.js';
import { match, meta, payload, setMark } from '../../helpers/model.js';

describe('doctor: our rules', () => {
  it('our table missing fails with the apply command', () => {
    const s = healthy();
    (s as { nft: unknown }).nft = { nftables: nftItems(s).filter((i) => !JSON.stringify(i).includes('"tproxy_rules"')) };
    const f = checkRules(input(s));
    assert.equal(only(f, 'rules.table', 'fail').fix, 'tproxy rules apply --intercept tcp:80 --intercept udp:80');
  });

  it('with the iptables backend our chains count as our rules', () => {
    const s = healthy();
    (s as { nft: unknown }).nft = { nftables: nftItems(s).filter((i) => !JSON.stringify(i).includes('"tproxy_rules"')) };
    (s.iptables as { ipv4?: string }).ipv4 = '*mangle\n:PREROUTING ACCEPT [0:0]\n:TPROXY_RULES_PRE - [0:0]\n-A PREROUTING -m comment --comment "tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000" -j TPROXY_RULES_PRE\nCOMMIT\n';
    assert.equal(only(checkRules(input(s)), 'rules.table').severity, 'pass');
  });

  it('a missing divert rule fails with --upstream transparent (warns otherwise) and is put back in its place', () => {
    const s = healthy();
    withoutRule(s, 'tproxy: divert tcp ipv4');
    const transparent = only(checkRules(input(s, FLAGS, 'transparent')), 'rules.divert', 'fail');
    assert.match(transparent.fix ?? '', /^nft add rule inet tproxy_rules prerouting position \d+ 'meta nfproto ipv4 tcp flags & \(syn \| ack\) != syn socket transparent 1 socket wildcard 0 meta mark set meta mark \| 0x00000001 counter accept comment "tproxy: divert tcp ipv4"'$/);
    assert.equal(only(checkRules(input(s)), 'rules.divert').severity, 'warn');
  });

  it('another rule that sets our mark bits fails (delete it); one that matches them warns', () => {
    const s = healthy();
    addForeignChain(s, 'qos', 'prerouting', 0, [[setMark(0x10)], [match({ '&': [meta('mark'), 1] }, 1), { accept: null }]]);
    const f = checkRules(input(s)).filter((x) => x.id === 'rules.mark-collision');
    assert.deepEqual(f.map((x) => x.severity), ['fail', 'warn']);
    assert.equal(f[0]!.fix, 'nft delete rule inet qos pre handle 2');
  });

  it('a divert rule elsewhere that also catches SYNs warns; ours exclude them', () => {
    const s = healthy();
    assert.ok(!checkRules(input(s)).some((x) => x.id === 'rules.divert-syn'));
    addForeignChain(s, 'other', 'prerouting', -150, [[match({ socket: { key: 'transparent' } }, 1), setMark(1), { accept: null }]]);
    assert.match(only(checkRules(input(s)), 'rules.divert-syn', 'warn').seen, /table inet other chain pre handle 2/);
  });

  it('an iptables divert that also catches SYNs warns, read rule by rule (nft and legacy flavours); quoted comments, UDP and flag matches do not', () => {
    const dump = (...rules: string[]): string => ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':DIVERT - [0:0]', ...rules, 'COMMIT', ''].join('\n');
    const s = healthy();
    (s.iptables as { ipv4?: string }).ipv4 = dump(
      '[12:720] -A PREROUTING -p tcp -m socket --transparent -j DIVERT',
      '-A PREROUTING ! -p udp -m socket -j DIVERT',
      '-A PREROUTING -p tcp -m socket --transparent -m tcp ! --tcp-flags SYN,ACK SYN -j DIVERT',
      '-A PREROUTING -p tcp -m tcp ! --syn -m socket -j DIVERT',
      '-A PREROUTING -p udp -m socket --transparent -j DIVERT',
      '-A PREROUTING -p tcp -m comment --comment "not -m socket here" -j ACCEPT',
      '-A INPUT -p tcp -m socket -j ACCEPT',
      '-A DIVERT -j MARK --set-xmark 0x1/0x1',
    );
    (s as { iptablesLegacy?: unknown }).iptablesLegacy = { ipv4: '', ipv6: dump('-A PREROUTING -p tcp -m socket -j DIVERT') };
    const seen = checkRules(input(s)).filter((x) => x.id === 'rules.divert-syn').map((x) => `${x.severity} ${x.seen}`);
    assert.deepEqual(seen, [
      'warn iptables -t mangle: -A PREROUTING -p tcp -m socket --transparent -j DIVERT',
      'warn iptables -t mangle: -A PREROUTING ! -p udp -m socket -j DIVERT',
      'warn ip6tables-legacy -t mangle: -A PREROUTING -p tcp -m socket -j DIVERT',
    ]);
    assert.match(only(checkRules(input(s)), 'rules.divert-syn').why, /Add `-m tcp ! --tcp-flags SYN,ACK SYN`/);
  });

  it('our own iptables divert rules exclude SYNs: no warning', () => {
    const s = healthy();
    const plan = planRules(rulesConfigFrom(FLAGS));
    (s.iptables as { ipv4?: string }).ipv4 = renderIptablesTransition(EMPTY_IPTABLES_STATE, plannedIptablesState(plan, 4));
    assert.match(s.iptables.ipv4 ?? '', /-m socket --transparent/, 'the rendered rules have the socket match');
    assert.ok(!checkRules(input(s)).some((x) => x.id === 'rules.divert-syn'));
  });

  it('fail mode open warns about exposure while the listener is down', () => {
    assert.equal(only(checkRules(input(healthy(), { ...FLAGS, 'fail-mode': 'open' })), 'rules.fail-open').severity, 'warn');
  });

  it('--local without the upstream exclusion in the output chain is a loop: fails, and the model confirms it', () => {
    const values = { ...FLAGS, local: true };
    const plan = planRules(rulesConfigFrom(values));
    const output = (nftJsonOf(plan) as Record<string, { chain?: string; name?: string; hook?: string } | undefined>[]).filter((i) => i.chain?.name === 'output' || i.rule?.chain === 'output');
    const s = healthy();
    nftItems(s).push(...output.map((i) => ({ ...i })));
    const ok = checkRules(input(s, values));
    assert.equal(only(ok, 'rules.upstream-loop').severity, 'pass');
    withoutRule(s, 'tproxy: local: upstream traffic of the proxy');
    const loop = only(checkRules(input(s, values)), 'rules.upstream-loop', 'fail');
    assert.match(loop.fix ?? '', /^nft insert rule inet tproxy_rules output 'meta mark 0x00000002 counter return comment "tproxy: local: upstream traffic of the proxy"'$/);
  });
});

describe('doctor: probes', () => {
  it('a chain of another table that drops the port fails the probes with the trace, and names the rule to delete', () => {
    const s = healthy();
    addForeignChain(s, 'fw', 'prerouting', -300, [[match(payload('tcp', 'dport'), 80), { drop: null }]]);
    const f = checkProbes(input(s));
    const probe = only(f, 'probe.tcp.ipv4.80', 'fail');
    assert.match(probe.seen, /DROPPED at netfilter: drop in inet fw pre handle 2/);
    assert.ok(probe.trace?.some((t) => /^\+ inet fw pre handle 2: match -> drop/.test(t)), JSON.stringify(probe.trace));
    assert.equal(only(f, 'probe.udp.ipv4.80').severity, 'pass');
    const drop = f.filter((x) => x.id === 'rules.foreign-drop');
    assert.equal(drop.length, 1, 'one finding per dropping rule');
    assert.equal(drop[0]!.fix, 'nft delete rule inet fw pre handle 2');
  });
});

describe('doctor: report', () => {
  it('puts the most severe group first and prints why and fix for problems only', () => {
    const s = healthy();
    (s.ipRules as { ipv4: unknown }).ipv4 = (s.ipRules.ipv4 as { fwmark?: string }[]).filter((r) => r.fwmark === undefined);
    const r = report(s);
    assert.equal(r.status, 1);
    assert.equal(r.findings[0]!.severity, 'fail');
    assert.deepEqual([...new Set(fails(r.findings))].sort(), ['probe.tcp.ipv4.80', 'probe.udp.ipv4.80', 'routing.fwmark-rule.ipv4']);
    const text = formatReport(r);
    assert.match(text, /^tproxy doctor: problems found \(\d+ fail, 0 warn, \d+ ok\)\n\nrouting:\n {2}FAIL routing\.fwmark-rule\.ipv4: /);
    assert.match(text, /fix: ip -4 rule add fwmark 0x1\/0x1 lookup 100 priority 9000/);
    assert.match(text, /\| dropped: the packet carries a socket/);
    const json = reportToJson(r) as { status: number; healthy: boolean; counts: { fail: number } };
    assert.equal(json.healthy, false);
    assert.ok(json.counts.fail >= 3);
  });
});

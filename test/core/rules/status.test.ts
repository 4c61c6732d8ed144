// Live state against the plan, with fixtures captured from nft 1.0.6 / iptables 1.8.9 / iproute2 6.1
// after applying the same configuration (see fixtures/).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { rulesConfigFrom } from '../../../src/cli/selection.js';
import { liveIptables } from '../../../src/core/rules/iptables-state.js';
import { parseNftListing, type NftListing } from '../../../src/core/nft-listing.js';
import { planRules } from '../../../src/core/rules/plan.js';
import { allInPlace, iptablesStatus, nftStatus, policyRoutingStatus, type StatusReport } from '../../../src/core/rules/status.js';
import { sourcePath } from '../../helpers/paths.js';
import { rulesWith } from '../../helpers/rules-configs.js';

const fixture = (name: string): string => readFileSync(sourcePath(`core/rules/fixtures/${name}`), 'utf8');
const RICH = {
  intercept: ['tcp:80,443,8000-8100', 'udp:53'],
  local: true,
  'local-exclude-uid': ['1000'],
  'local-exclude-gid': ['100'],
  'intercepted-dscp': 'ef',
  'intercepted-ttl': '64',
  'set-mark': '0x100/0xff00',
  'bypass-dst': ['10.0.0.0/8'],
  'bypass-src': ['192.0.2.0/24'],
  iface: ['eth1'],
};
const nftPlan = planRules(rulesConfigFrom({ ...RICH, 'fail-mode': 'reject' }));
const iptablesPlan = planRules(rulesConfigFrom({ ...RICH, 'fail-mode': 'drop' }));
const live = (): NftListing => parseNftListing(fixture('rich.nft.json'));

function states(report: StatusReport): Record<string, string> {
  return Object.fromEntries(report.pieces.filter((p) => p.state !== 'in place').map((p) => [p.name, `${p.state}${p.detail ? `: ${p.detail}` : ''}`]));
}

describe('nft status', () => {
  it('finds every piece of a freshly applied plan in place, with counters', () => {
    const report = nftStatus(nftPlan, live());
    assert.deepEqual(states(report), {});
    assert.deepEqual(report.unexpected, []);
    assert.ok(allInPlace([report]));
    assert.deepEqual(report.pieces.find((p) => p.name === 'prerouting: tproxy: intercept tcp ipv4')?.counter, { packets: 0, bytes: 0 });
  });

  it('reports a missing rule, a changed rule, a reordered rule and a foreign rule', () => {
    const base = live();
    const byComment = (c: string): number => base.rules.findIndex((r) => r.comment === c);
    const rules = [...base.rules];
    const changed = rules[byComment('tproxy: intercept udp ipv4')]!;
    rules[byComment('tproxy: intercept udp ipv4')] = { ...changed, expr: changed.expr.map((e) => (JSON.stringify(e).includes('"dport"') ? { match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 5353 } } : e)) };
    rules.splice(byComment('tproxy: divert udp ipv6'), 1);
    const upstream = rules.splice(rules.findIndex((r) => r.comment === 'tproxy: upstream traffic of the proxy'), 1)[0]!;
    rules.splice(rules.findIndex((r) => r.comment === 'tproxy: bypass sources ipv4'), 0, upstream);
    rules.push({ family: 'inet', table: 'tproxy_rules', chain: 'prerouting', handle: 999, expr: [{ accept: null }] });
    const report = nftStatus(nftPlan, { ...base, rules });
    assert.deepEqual(states(report), {
      'prerouting: tproxy: divert tcp ipv4': 'drifted: out of order',
      'prerouting: tproxy: divert udp ipv4': 'drifted: out of order',
      'prerouting: tproxy: divert tcp ipv6': 'drifted: out of order',
      'prerouting: tproxy: divert udp ipv6': 'missing',
      'prerouting: tproxy: bypass destinations ipv4': 'drifted: out of order',
      'prerouting: tproxy: bypass destinations ipv6': 'drifted: out of order',
      'prerouting: tproxy: intercept udp ipv4': 'drifted: its expressions differ from the plan',
    });
    assert.deepEqual(report.unexpected, ['rule in chain prerouting, handle 999']);
  });

  it('reports set elements and chain hooks that differ', () => {
    const base = live();
    const sets = base.sets.map((s) => (s.name === 'bypass_saddr4' ? { ...s, elem: [...(s.elem ?? []), '198.51.100.7'] } : s));
    const chains = base.chains.map((c) => (c.name === 'output' ? { ...c, prio: 0 } : c));
    assert.deepEqual(states(nftStatus(nftPlan, { ...base, sets, chains })), {
      'set bypass_saddr4': 'drifted: elements { 192.0.2.0/24, 198.51.100.7/32 }, wanted { 192.0.2.0/24 }',
      'chain output': 'drifted: type route hook output priority 0 policy accept, wanted type route hook output priority mangle policy accept',
    });
  });

  it('reports everything missing when the table is not there', () => {
    const report = nftStatus(nftPlan, { tables: [], chains: [], sets: [], rules: [] });
    assert.ok(report.pieces.every((p) => p.state === 'missing'));
  });
});

describe('iptables status', () => {
  it('finds a freshly applied plan in place in both families, whoever owns it', () => {
    for (const [family, file] of [[4, 'rich.iptables-save'], [6, 'rich.ip6tables-save']] as const) {
      const report = iptablesStatus(iptablesPlan, family, liveIptables(fixture(file), 'tproxy_rules'));
      assert.deepEqual(states(report), {}, file);
      assert.deepEqual(report.unexpected, [], file);
      const owned = liveIptables(fixture(file).replace(/priority=9000"/g, 'priority=9000 owner=42"'), 'tproxy_rules');
      assert.equal(owned.record?.owner, 42);
      assert.deepEqual(states(iptablesStatus(iptablesPlan, family, owned)), {});
    }
  });

  it('reports changed, missing and foreign rules', () => {
    const text = fixture('rich.iptables-save')
      .replace('-m udp --dport 53 -m comment --comment "tproxy: local: reroute udp ipv4"', '-m udp --dport 5353 -m comment --comment "tproxy: local: reroute udp ipv4"')
      .replace(/^.*"tproxy: bypass sources ipv4".*$/m, '[0:0] -A TPROXY_RULES_PRE -j ACCEPT');
    const report = iptablesStatus(iptablesPlan, 4, liveIptables(text, 'tproxy_rules'));
    assert.deepEqual(states(report), {
      'iptables TPROXY_RULES_OUT: tproxy: local: reroute udp ipv4': 'drifted: a rule with this comment differs from the plan',
      'iptables TPROXY_RULES_PRE: tproxy: bypass sources ipv4': 'missing',
    });
    assert.deepEqual(report.unexpected, [
      'iptables -A TPROXY_RULES_PRE -j ACCEPT',
      'iptables -A TPROXY_RULES_OUT -p udp -m udp --dport 5353 -m comment --comment "tproxy: local: reroute udp ipv4" -j MARK --set-xmark 0x1/0x1',
    ]);
    assert.deepEqual(liveIptables(text, 'tproxy_rules').foreignChains, ['TPROXY_RULES_PRE'], 'a rule without our comment makes the chain not ours');
  });
});

describe('policy routing status', () => {
  it('finds our rule and route, and reports the other family missing', () => {
    const routing = { rules: { 4: JSON.parse(fixture('rules4.json')) as [], 6: [] }, routes: { 4: JSON.parse(fixture('routes4.json')) as [], 6: [] } };
    assert.deepEqual(states(policyRoutingStatus(nftPlan, routing)), {
      'ip -6 rule fwmark 0x00000001/0x00000001 lookup 100 priority 9000': 'missing',
      'ip -6 route local ::/0 dev lo table 100': 'missing',
    });
  });

  it('reports a duplicated rule and a foreign route in our table as drifted', () => {
    const rule = { priority: 9000, src: 'all', fwmark: '0x1', fwmask: '0x1', table: '100' };
    const routing = { rules: { 4: [rule, rule], 6: [] }, routes: { 4: [{ type: '6', dst: '203.0.113.0/24', table: '100' }], 6: [] } };
    const plan = planRules(rulesWith(nftPlan.config, { families: [4] }));
    assert.deepEqual(states(policyRoutingStatus(plan, routing)), {
      'ip -4 rule fwmark 0x00000001/0x00000001 lookup 100 priority 9000': 'drifted: present 2 times',
      'ip -4 route local 0.0.0.0/0 dev lo table 100': 'drifted: table 100 has ip -4 route blackhole 203.0.113.0/24 table 100 instead',
    });
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findCollisions, type HostUsage } from '../../../src/core/rules/collisions.js';
import { singleListenerRules, type RulesConfig } from '../../../src/core/rules/config.js';
import type { IpRouteJson, IpRuleJson } from '../../../src/core/rules/ip-json.js';
import { parseIptablesDump } from '../../../src/core/iptables-dump.js';
import { markUsageFromIptables } from '../../../src/core/rules/mark-usage-iptables.js';
import { markUsageFromNft } from '../../../src/core/rules/mark-usage.js';
import { parseNftListing } from '../../../src/core/nft-listing.js';
import { planRules } from '../../../src/core/rules/plan.js';
import { recordedPolicyRoutes } from '../../../src/core/rules/record.js';

const config: RulesConfig = singleListenerRules([{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }]);
const plan = planRules(config);
const DEFAULT_RULES: IpRuleJson[] = [{ priority: 0, src: 'all', table: '255' }, { priority: 32766, src: 'all', table: '254' }, { priority: 32767, src: 'all', table: '253' }];
const OURS: IpRuleJson = { priority: 9000, src: 'all', fwmark: '0x1', fwmask: '0x1', table: '100' };
const OUR_ROUTE: IpRouteJson = { type: '2', dst: 'default', dev: 'lo', table: '100' };

function host(rules: IpRuleJson[] = [], routes: IpRouteJson[] = [], marks: HostUsage['marks'] = []): HostUsage {
  return { routing: { rules: { 4: [...DEFAULT_RULES, ...rules], 6: [...DEFAULT_RULES, ...rules] }, routes: { 4: routes, 6: [] } }, marks };
}

// What WireGuard (wg-quick), kube-proxy and Tailscale put on a host: none of it collides with 0x1/0x1.
const NEIGHBOURS = parseNftListing(JSON.stringify({
  nftables: [
    { rule: { family: 'ip', table: 'wg-quick-wg0', chain: 'postmangle', handle: 3, expr: [{ match: { op: '==', left: { meta: { key: 'mark' } }, right: 51820 } }, { mangle: { key: { ct: { key: 'mark' } }, value: { meta: { key: 'mark' } } } }] } },
    { rule: { family: 'ip', table: 'kube-proxy', chain: 'mark-for-masquerade', handle: 4, expr: [{ mangle: { key: { meta: { key: 'mark' } }, value: { '|': [{ meta: { key: 'mark' } }, 0x4000] } } }] } },
    { rule: { family: 'inet', table: 'ts', chain: 'pre', handle: 5, expr: [{ mangle: { key: { meta: { key: 'mark' } }, value: { '|': [{ '&': [{ meta: { key: 'mark' } }, 0xff00ffff] }, 0x40000] } } }] } },
    { rule: { family: 'inet', table: 'tproxy_rules', chain: 'prerouting', handle: 6, expr: [{ mangle: { key: { meta: { key: 'mark' } }, value: 1 } }] } },
  ],
}));

describe('collision detection', () => {
  it('accepts a clean host, and our own rule and route from an earlier apply', () => {
    assert.deepEqual(findCollisions(plan, host(), plan.policyRoutes), { conflicts: [], warnings: [] });
    assert.deepEqual(findCollisions(plan, host([OURS], [OUR_ROUTE]), plan.policyRoutes).conflicts, []);
  });

  it('does not mistake WireGuard, kube-proxy or Tailscale marks, or our own table, for ours', () => {
    const marks = markUsageFromNft(NEIGHBOURS, { family: 'inet', name: 'tproxy_rules' });
    assert.equal(marks.length, 3);
    const wg: IpRuleJson = { priority: 32765, not: null, src: 'all', fwmark: '0xca6c', table: '51820' };
    assert.deepEqual(findCollisions(plan, host([wg], [], marks), plan.policyRoutes).conflicts, []);
  });

  it('refuses a foreign ip rule at our priority, suggesting a free one', () => {
    const { conflicts } = findCollisions(plan, host([{ priority: 9000, src: '10.0.0.0', srclen: 8, table: '200' }]), plan.policyRoutes);
    assert.deepEqual(conflicts, [
      'rule priority 9000 is already used by `ip -4 rule 9000: from 10.0.0.0/8 lookup 200`: choose another --rule-priority, e.g. 9001',
      'rule priority 9000 is already used by `ip -6 rule 9000: from 10.0.0.0/8 lookup 200`: choose another --rule-priority, e.g. 9001',
    ]);
  });

  it('refuses a route table used by another rule or holding other routes, suggesting a free one', () => {
    const { conflicts } = findCollisions(plan, host([{ priority: 100, src: 'all', iif: 'wg0', table: '100' }, { priority: 101, src: 'all', table: '101' }], [{ dst: '198.51.100.0/24', gateway: '192.0.2.1', dev: 'eth0', table: '100' }]), plan.policyRoutes);
    assert.ok(conflicts.includes('route table 100 is already used by `ip -4 rule 100: from all iif wg0 lookup 100`: choose another --route-table, e.g. 102'), conflicts.join('\n'));
    assert.ok(conflicts.includes('route table 100 already has `ip -4 route unicast 198.51.100.0/24 via 192.0.2.1 dev eth0 table 100`: choose another --route-table, e.g. 102'), conflicts.join('\n'));
  });

  it('refuses our mark in a foreign ip rule, nft match or constant set, naming each and a free bit', () => {
    const marks = markUsageFromNft(parseNftListing(JSON.stringify({
      nftables: [
        { rule: { family: 'inet', table: 'other', chain: 'c', handle: 7, comment: 'their proxy', expr: [{ match: { op: '==', left: { '&': [{ meta: { key: 'mark' } }, 0xff] }, right: 1 } }, { accept: null }] } },
        { rule: { family: 'ip', table: 'mangle2', chain: 'c', handle: 8, expr: [{ mangle: { key: { meta: { key: 'mark' } }, value: { '|': [{ meta: { key: 'mark' } }, 0x1] } } }] } },
      ],
    })), { family: 'inet', name: 'tproxy_rules' });
    const { conflicts } = findCollisions(plan, host([{ priority: 500, src: 'all', fwmark: '0x1', fwmask: '0x3', table: '300' }], [], marks), plan.policyRoutes);
    assert.equal(conflicts.length, 1);
    assert.equal(
      conflicts[0],
      'fwmark 0x1/0x1 is already used: `ip -4 rule 500: from all fwmark 0x1/0x3 lookup 300`; `ip -6 rule 500: from all fwmark 0x1/0x3 lookup 300`; table inet other chain c handle 7 ("their proxy") (matches mark 0x1/0xff); table ip mangle2 chain c handle 8 (sets mark bits 0x00000001). Choose mark bits nobody else uses, e.g. --fwmark 0x00000100 --fwmark-mask 0x00000100',
    );
  });

  it('warns about whole-mark copies and opaque xt targets instead of refusing', () => {
    const marks = markUsageFromNft(parseNftListing(JSON.stringify({
      nftables: [
        { rule: { family: 'ip', table: 'wg-quick-wg0', chain: 'premangle', handle: 2, expr: [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'udp' } }, { mangle: { key: { meta: { key: 'mark' } }, value: { ct: { key: 'mark' } } } }] } },
        { rule: { family: 'ip', table: 'mangle', chain: 'PREROUTING', handle: 3, expr: [{ xt: { type: 'target', name: 'TPROXY' } }] } },
      ],
    })), { family: 'inet', name: 'tproxy_rules' });
    const result = findCollisions(plan, host([], [], marks), plan.policyRoutes);
    assert.deepEqual(result.conflicts, []);
    assert.equal(result.warnings.length, 2);
    assert.match(result.warnings[0] ?? '', /table ip wg-quick-wg0 chain premangle handle 2 sets the packet mark from a value only known at run time/);
    assert.match(result.warnings[1] ?? '', /table ip mangle chain PREROUTING handle 3 \(xt TPROXY\) uses packet marks in a way nft cannot show/);
  });

  it('treats the policy routing an earlier apply recorded as ours', () => {
    const old = planRules({ ...config, routeTable: 7, rulePriority: 7000 });
    const oldRule: IpRuleJson = { priority: 7000, src: 'all', fwmark: '0x1', fwmask: '0x1', table: '7' };
    assert.equal(findCollisions(plan, host([oldRule]), plan.policyRoutes).conflicts.length, 1, 'unknown: a collision');
    assert.deepEqual(findCollisions(plan, host([oldRule], [{ ...OUR_ROUTE, table: '7' }]), [...plan.policyRoutes, ...recordedPolicyRoutes(old.record)]).conflicts, []);
  });

  it('reads mark usage from iptables-save, skipping our own chains', () => {
    const dump = parseIptablesDump(`*mangle
:PREROUTING ACCEPT [0:0]
:TPROXY_RULES_PRE - [0:0]
-A PREROUTING -m comment --comment "tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000" -j TPROXY_RULES_PRE
-A PREROUTING -p tcp -m mark --mark 0x1/0x1 -j ACCEPT
-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff
-A TPROXY_RULES_PRE -p tcp -j TPROXY --on-port 8000 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -j MARK --set-xmark 0x4000/0x4000
COMMIT
`);
    const usage = markUsageFromIptables(dump, 'iptables', 'tproxy_rules');
    assert.deepEqual(usage.map((u) => [u.kind, u.mark.value, u.mark.mask]), [['match', 1, 1], ['copy', 0, 0xff], ['set', 0x4000, 0x4000]]);
    const result = findCollisions(plan, host([], [], usage), plan.policyRoutes);
    assert.equal(result.conflicts.length, 1);
    assert.match(result.conflicts[0] ?? '', /iptables -t mangle -A PREROUTING -p tcp -m mark --mark 0x1\/0x1 -j ACCEPT \(matches mark 0x1\/0x1\)/);
    assert.equal(result.warnings.length, 1);
  });
});

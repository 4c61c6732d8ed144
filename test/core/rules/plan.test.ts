import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isTproxyError } from '../../../src/core/errors.js';
import type { ListenerRules, RulesConfig } from '../../../src/core/rules/config.js';
import { ownedBy, planRules, plannedRules } from '../../../src/core/rules/plan.js';
import { ipApplyCommands, ipRouteArgs, ipRuleArgs } from '../../../src/core/rules/policy-routing.js';
import { expectedExpressions } from '../../../src/core/rules/nft-expected.js';
import { BASE_CONFIG, rulesWith } from '../../helpers/rules-configs.js';
import { plannedIptablesState } from '../../../src/core/rules/render-iptables.js';
import { markSetText, nftRuleText, renderNftDeleteScript, renderNftRestoreScript, renderNftScript } from '../../../src/core/rules/render-nft.js';

const classic: RulesConfig = BASE_CONFIG;

function rulesOf(config: RulesConfig, chain = 'prerouting'): ReturnType<typeof plannedRules> {
  return plannedRules(planRules(config)).filter((r) => r.chain.name === chain);
}

describe('rule planning', () => {
  it('orders rules: upstream return, divert, bypass, tproxy, then fail-closed', () => {
    assert.deepEqual(
      rulesOf(classic).map((r) => r.rule.role),
      ['upstream-return', 'divert', 'divert', 'divert', 'divert', 'bypass', 'bypass', 'bypass', 'bypass', 'bypass', 'tproxy', 'tproxy', 'tproxy', 'tproxy', 'fail-closed', 'fail-closed', 'fail-closed', 'fail-closed'],
    );
  });

  it('gives every rule a comment unique in its chain', () => {
    const config: RulesConfig = { ...classic, localTraffic: { excludeUids: [1], excludeGids: [2] } };
    for (const chain of planRules(config).table.chains) {
      const comments = chain.rules.map((r) => r.comment);
      assert.equal(new Set(comments).size, comments.length, chain.name);
    }
  });

  it('keeps pure SYNs out of the TCP divert rule and ignores wildcard-bound sockets', () => {
    const divert = rulesOf(classic).find((r) => r.rule.role === 'divert' && r.rule.transport === 'tcp');
    assert.match(nftRuleText(divert!.rule), /^meta nfproto ipv4 tcp flags & \(syn \| ack\) != syn socket transparent 1 socket wildcard 0 meta mark set/);
  });

  it('puts the counter after tproxy so it only counts packets that found a transparent socket', () => {
    for (const { rule } of rulesOf(classic).filter((r) => r.rule.role === 'tproxy')) {
      const text = nftRuleText(rule);
      assert.ok(text.indexOf('tproxy ip') < text.indexOf('counter'), text);
    }
  });

  it('fails closed after the tproxy rules: drop by default, reject on request, nothing when open', () => {
    const text = (config: RulesConfig): string[] => rulesOf(config).filter((r) => r.rule.role === 'fail-closed').map((r) => nftRuleText(r.rule));
    assert.deepEqual(text(classic)[0], 'meta nfproto ipv4 tcp dport 80 counter drop comment "tproxy: fail closed tcp ipv4"');
    assert.deepEqual(text({ ...classic, failMode: 'reject' }), [
      'meta nfproto ipv4 tcp dport 80 counter reject with tcp reset comment "tproxy: fail closed tcp ipv4"',
      'meta nfproto ipv4 udp dport 80 counter reject with icmp port-unreachable comment "tproxy: fail closed udp ipv4"',
      'meta nfproto ipv6 tcp dport 80 counter reject with tcp reset comment "tproxy: fail closed tcp ipv6"',
      'meta nfproto ipv6 udp dport 80 counter reject with icmpv6 port-unreachable comment "tproxy: fail closed udp ipv6"',
    ]);
    assert.deepEqual(text({ ...classic, failMode: 'open' }), []);
  });

  it('plans IPv4 only, with port lists, ranges and interfaces', () => {
    const plan = planRules(rulesWith(classic, { families: [4], interfaces: ['eth1', 'wg0'], intercept: [{ transport: 'tcp', ports: [{ from: 80, to: 80 }, { from: 8000, to: 8100 }] }] }));
    const tproxy = plannedRules(plan).filter((r) => r.rule.role === 'tproxy');
    assert.equal(tproxy.length, 1);
    assert.match(nftRuleText(tproxy[0]!.rule), /^iifname \{ "eth1", "wg0" \} meta nfproto ipv4 tcp dport \{ 80, 8000-8100 \} tproxy ip to :8000 /);
    assert.equal(plan.policyRoutes.length, 1);
    assert.deepEqual(plan.table.sets.map((s) => s.name), ['bypass_daddr4', 'bypass_saddr4']);
    assert.ok(!renderNftScript(plan).includes('ip6 '));
  });

  it('bypasses the default prefixes, configured ones, and local, broadcast and multicast destinations', () => {
    const plan = planRules({ ...classic, bypass: { destinations: [...classic.bypass.destinations, '10.0.0.0/8', '10.1.0.0/16'], sources: ['192.0.2.0/24', '2001:db8::/32'] } });
    const set = (name: string): string[] => plan.table.sets.find((s) => s.name === name)!.elements.map((c) => `${c.address}/${c.length}`);
    assert.deepEqual(set('bypass_daddr4'), ['127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32', '10.0.0.0/8']);
    assert.deepEqual(set('bypass_daddr6'), ['::1/128', 'fe80::/10', 'ff00::/8']);
    assert.deepEqual(set('bypass_saddr4'), ['192.0.2.0/24']);
    assert.deepEqual(set('bypass_saddr6'), ['2001:db8::/32']);
    assert.ok(plannedRules(plan).some((r) => nftRuleText(r.rule).startsWith('fib daddr type { local, broadcast, multicast } return')));
  });

  it('intercepts the host\'s own traffic only when asked, excluding the upstream mark, users and groups', () => {
    assert.equal(planRules(classic).table.chains.length, 1);
    const config: RulesConfig = { ...classic, interfaces: ['eth0'], localTraffic: { excludeUids: [0, 1000], excludeGids: [100] } };
    const output = rulesOf(config, 'output').map((r) => nftRuleText(r.rule));
    assert.equal(output[0], 'meta mark 0x00000002 counter return comment "tproxy: local: upstream traffic of the proxy"');
    assert.equal(output[1], 'meta skuid { 0, 1000 } return comment "tproxy: local: excluded users"');
    assert.equal(output[2], 'meta skgid 100 return comment "tproxy: local: excluded groups"');
    assert.equal(output.at(-1), 'meta nfproto ipv6 udp dport 80 meta mark set meta mark | 0x00000001 counter comment "tproxy: local: reroute udp ipv6"');
    const chain = planRules(config).table.chains[1]!;
    assert.deepEqual([chain.type, chain.hook, chain.priority], ['route', 'output', 'mangle']);
    // Rerouted packets come in on lo: an interface restriction must let them through.
    assert.match(nftRuleText(rulesOf(config).find((r) => r.rule.role === 'tproxy')!.rule), /^iifname \{ "eth0", "lo" \}/);
  });

  it('adds the opt-in mangle targets to the packets handed to the proxy (divert and tproxy)', () => {
    const config: RulesConfig = rulesWith(classic, { families: [6], mangle: { mark: { value: 0x100, mask: 0xff00 }, dscp: 46, ttl: 64 } });
    for (const { rule } of rulesOf(config).filter((r) => r.rule.role === 'divert' || r.rule.role === 'tproxy')) {
      assert.match(nftRuleText(rule), /meta mark set meta mark & 0xffff01ff \| 0x00000100 ip6 dscp set 46 ip6 hoplimit set 64 counter accept/);
    }
    assert.ok(!rulesOf(config).filter((r) => r.rule.role === 'bypass').some((r) => nftRuleText(r.rule).includes('dscp')));
  });

  it('plans policy routing for each family', () => {
    const plan = planRules(classic);
    assert.deepEqual(plan.policyRoutes.map((r) => ipRuleArgs(r, 'add')), [
      ['-4', 'rule', 'add', 'fwmark', '0x00000001/0x00000001', 'lookup', '100', 'priority', '9000'],
      ['-6', 'rule', 'add', 'fwmark', '0x00000001/0x00000001', 'lookup', '100', 'priority', '9000'],
    ]);
    assert.deepEqual(plan.policyRoutes.map((r) => ipRouteArgs(r, 'del')), [
      ['-4', 'route', 'del', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100'],
      ['-6', 'route', 'del', 'local', '::/0', 'dev', 'lo', 'table', '100'],
    ]);
    assert.deepEqual(ipApplyCommands(plan.policyRoutes)[0], ['ip', '-4', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100']);
  });

  it('records what it owns in the table comment, with the owner when run by tproxy run', () => {
    const plan = planRules(classic);
    assert.match(renderNftScript(plan), /^ {2}comment "tproxy v1 families=4,6 fwmark=0x1\/0x1 table=100 priority=9000"$/m);
    assert.match(renderNftScript(ownedBy(plan, 4321)), /priority=9000 owner=4321"$/m);
  });

  it('renders the delete and the rollback scripts', () => {
    const plan = planRules(classic);
    assert.equal(renderNftDeleteScript(plan), 'delete table inet tproxy_rules\n');
    assert.equal(renderNftRestoreScript('inet', 'tproxy_rules', undefined), 'table inet tproxy_rules {}\ndelete table inet tproxy_rules\n');
    assert.equal(renderNftRestoreScript('inet', 't', 'table inet t {\n}\n'), 'table inet t {}\ndelete table inet t\ntable inet t {\n}\n');
  });

  it('writes mark updates the way nft lists them', () => {
    assert.equal(markSetText({ value: 0x1, mask: 0x1 }), 'meta mark set meta mark | 0x00000001');
    assert.equal(markSetText({ value: 0x100, mask: 0xff00 }), 'meta mark set meta mark & 0xffff01ff | 0x00000100');
    assert.equal(markSetText({ value: 0, mask: 0xf0 }), 'meta mark set meta mark & 0xffffff0f');
    assert.equal(markSetText({ value: 0x7, mask: 0xffffffff }), 'meta mark set 0x00000007');
  });
});

describe('listen address', () => {
  const plan = planRules(rulesWith(classic, { addresses: { 4: '127.0.0.1', 6: '::1' } }));
  const tproxy = plannedRules(plan).filter((r) => r.rule.role === 'tproxy');

  it('redirects to the listen address in nft text and JSON', () => {
    const text = tproxy.map((r) => nftRuleText(r.rule)).join('\n');
    assert.match(text, /tproxy ip to 127\.0\.0\.1:8000 /);
    assert.match(text, /tproxy ip6 to \[::1\]:8000 /);
    const json = tproxy.map((r) => expectedExpressions(r.rule)).flat();
    assert.ok(json.some((e) => JSON.stringify(e) === JSON.stringify({ tproxy: { family: 'ip6', addr: '::1', port: 8000 } })));
  });

  it('redirects to the listen address with --on-ip in iptables', () => {
    const v4 = plannedIptablesState(plan, 4);
    assert.match(JSON.stringify(v4), /TPROXY --on-port 8000 --on-ip 127\.0\.0\.1 /);
  });

  it('keeps :port (any local address) without one', () => {
    assert.match(plannedRules(planRules(classic)).filter((r) => r.rule.role === 'tproxy').map((r) => nftRuleText(r.rule)).join('\n'), /tproxy ip to :8000 /);
  });
});

describe('rules configuration validation', () => {
  const invalid: [string, Parameters<typeof rulesWith>[1], string, RegExp][] = [
    ['a table name with a space', { tableName: 'my table' }, 'tableName', /"my table" must be a letter/],
    ['an IPv6 listen address given for IPv4', { addresses: { 4: '::1' } }, 'listeners[0].addresses', /"::1" is not an IPv4 address/],
    ['a host name as listen address', { addresses: { 6: 'localhost' } }, 'listeners[0].addresses', /"localhost" is not an IPv6 address/],
    ['port 0', { port: 0 }, 'listeners[0].port', /0 must be a port/],
    ['no family', { families: [] }, 'families', /at least one of IPv4 or IPv6/],
    ['nothing to intercept', { intercept: [] }, 'listeners[0].intercept', /nothing to intercept/],
    ['a reversed range', { intercept: [{ transport: 'tcp', ports: [{ from: 90, to: 80 }] }] }, 'listeners[0].intercept', /tcp:90-80 is not a port or range/],
    ['a port above 65535', { intercept: [{ transport: 'udp', ports: [{ from: 53, to: 70000 }] }] }, 'listeners[0].intercept', /udp:53-70000/],
    ['a protocol listed twice', { intercept: [{ transport: 'tcp', ports: [{ from: 1, to: 1 }] }, { transport: 'tcp', ports: [{ from: 2, to: 2 }] }] }, 'listeners[0].intercept', /tcp is listed twice/],
    ['an invalid CIDR', { bypass: { destinations: ['10.0.0.300/8'], sources: [] } }, 'bypass.destinations', /"10.0.0.300\/8" is not an IPv4 or IPv6 address/],
    ['a CIDR with host bits', { bypass: { destinations: [], sources: ['10.1.2.3/8'] } }, 'bypass.sources', /did you mean 10.0.0.0\/8/],
    ['a prefix length too long', { bypass: { destinations: ['2001:db8::/129'], sources: [] } }, 'bypass.destinations', /invalid prefix length \(0-128 for IPv6\)/],
    ['an upstream mark equal to the fwmark', { upstreamMark: 0x1 }, 'listeners[0].upstreamMark', /upstream mark 0x00000001 matches the tproxy fwmark/],
    ['an upstream mark that matches under the mask', { upstreamMark: 0x3 }, 'listeners[0].upstreamMark', /would be routed back to itself/],
    ['a mark outside its mask', { fwmark: 0x2, fwmarkMask: 0x1 }, 'fwmark', /has no bit inside mask/],
    ['a mark with bits outside its mask', { fwmark: 0x3, fwmarkMask: 0x1 }, 'fwmark', /has bits outside mask/],
    ['a mangle mark overlapping the fwmark mask', { mangle: { mark: { value: 0x1, mask: 0xff } } }, 'mangle.mark', /conflicting marks: mask 0x000000ff overlaps the fwmark mask/],
    ['a DSCP above 63', { mangle: { dscp: 64 } }, 'mangle.dscp', /64 is not a DSCP code point/],
    ['a TTL of 0', { mangle: { ttl: 0 } }, 'mangle.ttl', /0 is not a TTL/],
    ['a negative uid', { localTraffic: { excludeUids: [-1], excludeGids: [] } }, 'localTraffic.excludeUids', /-1 is not a user or group id/],
    ['an unknown fail mode', { failMode: 'maybe' as RulesConfig['failMode'] }, 'failMode', /use open, drop, reject/],
    ['the main table', { routeTable: 254 }, 'routeTable', /not 253 default, 254 main, 255 local/],
    ['a rule priority after main', { rulePriority: 32766 }, 'rulePriority', /from 1 to 32765/],
    ['a bad interface name', { interfaces: ['a very long interface name'] }, 'interfaces', /is not an interface name/],
  ];
  for (const [what, change, field, message] of invalid) {
    it(`refuses ${what}, naming ${field}`, () => {
      assert.throws(
        () => planRules(rulesWith(classic, change)),
        (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && e.details.field === field && e.message.startsWith(`${field}: `) && message.test(e.message),
      );
    });
  }
});

describe('several listeners', () => {
  const two: RulesConfig = {
    ...BASE_CONFIG,
    listeners: [
      { name: 'web', port: 8100, addresses: {}, families: [4, 6], intercept: [{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }], upstreamMark: 0x2 },
      { name: 'dns', port: 8153, addresses: { 4: '127.0.0.1' }, families: [4], intercept: [{ transport: 'udp', ports: [{ from: 53, to: 53 }] }], upstreamMark: 0x4 },
    ],
  };

  it('intercepts each listener\'s ports to its own port, in one table, naming the listener', () => {
    const text = rulesOf(two).map((r) => nftRuleText(r.rule));
    assert.deepEqual(text.filter((t) => t.includes('tproxy ') || t.includes('counter drop') || t.includes('return comment "tproxy: upstream')), [
      'meta mark 0x00000002 counter return comment "tproxy: upstream traffic of the proxy mark 0x00000002"',
      'meta mark 0x00000004 counter return comment "tproxy: upstream traffic of the proxy mark 0x00000004"',
      'meta nfproto ipv4 tcp dport 80 tproxy ip to :8100 meta mark set meta mark | 0x00000001 counter accept comment "tproxy: intercept tcp ipv4 (web)"',
      'meta nfproto ipv6 tcp dport 80 tproxy ip6 to :8100 meta mark set meta mark | 0x00000001 counter accept comment "tproxy: intercept tcp ipv6 (web)"',
      'meta nfproto ipv4 udp dport 53 tproxy ip to 127.0.0.1:8153 meta mark set meta mark | 0x00000001 counter accept comment "tproxy: intercept udp ipv4 (dns)"',
      'meta nfproto ipv4 tcp dport 80 counter drop comment "tproxy: fail closed tcp ipv4 (web)"',
      'meta nfproto ipv6 tcp dport 80 counter drop comment "tproxy: fail closed tcp ipv6 (web)"',
      'meta nfproto ipv4 udp dport 53 counter drop comment "tproxy: fail closed udp ipv4 (dns)"',
    ]);
    assert.deepEqual(rulesOf(two).filter((r) => r.rule.role === 'divert').map((r) => r.rule.comment), ['tproxy: divert tcp ipv4', 'tproxy: divert udp ipv4', 'tproxy: divert tcp ipv6', 'tproxy: divert udp ipv6']);
    const iptables = JSON.stringify(plannedIptablesState(planRules(two), 4));
    assert.match(iptables, /TPROXY --on-port 8153 --on-ip 127\.0\.0\.1 /);
    assert.match(iptables, /TPROXY --on-port 8100 /);
  });

  it('refuses two listeners taking the same traffic or port, and a listener family the rules lack', () => {
    const refuses = (config: RulesConfig, field: string, message: RegExp): void => {
      assert.throws(() => planRules(config), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && e.details.field === field && message.test(e.message), field);
    };
    const [web, dns] = two.listeners as [RulesConfig['listeners'][number], RulesConfig['listeners'][number]];
    refuses({ ...two, listeners: [web, { ...dns, intercept: [{ transport: 'tcp', ports: [{ from: 70, to: 90 }] }] }] }, 'listeners[1].intercept', /tcp:70-90 is already intercepted by listeners\[0\] \(web\)/);
    refuses({ ...two, listeners: [web, { ...dns, port: 8100, intercept: [{ transport: 'tcp', ports: [{ from: 443, to: 443 }] }] }] }, 'listeners[1].port', /8100 is already the port of listeners\[0\] \(web\) for tcp/);
    refuses({ ...two, families: [6] }, 'listeners[0].families', /IPv4 is not among the families of the rules \(6\)/);
    refuses({ ...two, listeners: [web, { ...dns, upstreamMark: 0x3 }] }, 'listeners[1].upstreamMark', /would be routed back to itself/);
    refuses({ ...two, listeners: [] }, 'listeners', /at least one listener \(or mmproxy entry\)/);
  });

  it('refuses overlapping ports exactly when two listeners share a family, a transport and a port (against a naive check)', () => {
    const range = fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 5 })).map(([from, width]) => ({ from, to: from + width }));
    const listener = fc.record({
      families: fc.constantFrom<(4 | 6)[]>([4], [6], [4, 6]),
      tcp: fc.array(range, { maxLength: 3 }),
      udp: fc.array(range, { maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.array(listener, { minLength: 1, maxLength: 4 }), (drawn) => {
        const listeners: ListenerRules[] = drawn.map((l, i) => ({
          name: `l${i}`,
          port: 8100 + i,
          addresses: {},
          families: l.families,
          intercept: [...(l.tcp.length > 0 ? [{ transport: 'tcp' as const, ports: l.tcp }] : []), ...(l.udp.length > 0 ? [{ transport: 'udp' as const, ports: l.udp }] : [])],
          upstreamMark: 0x2 << i,
        }));
        if (listeners.some((l) => l.intercept.length === 0)) return;
        const overlap = listeners.some((a, i) =>
          listeners.slice(0, i).some((b) => a.families.some((f) => b.families.includes(f)) && a.intercept.some((x) => b.intercept.some((y) => x.transport === y.transport && x.ports.some((p) => y.ports.some((q) => p.from <= q.to && q.from <= p.to))))),
        );
        let refused: unknown;
        try {
          planRules({ ...BASE_CONFIG, families: [4, 6], listeners });
        } catch (error) {
          refused = error;
        }
        assert.equal(refused !== undefined, overlap, (refused as Error | undefined)?.message);
        if (refused) assert.ok(isTproxyError(refused, 'ERR_INVALID_ARGUMENT') && /is already intercepted by listeners\[\d\]/.test(refused.message), (refused as Error).message);
      }),
      { seed: 1313, numRuns: 400 },
    );
  });

  it('checks 32,768 single ports per listener by one sort (no pairwise comparison)', () => {
    const ports = (odd: number) => Array.from({ length: 32767 }, (_, k) => ({ from: 2 * k + odd, to: 2 * k + odd })).filter((r) => r.from >= 1);
    const [web, dns] = two.listeners as [ListenerRules, ListenerRules];
    const config = { ...two, listeners: [{ ...web, intercept: [{ transport: 'tcp' as const, ports: ports(1) }] }, { ...dns, families: [4, 6] as (4 | 6)[], intercept: [{ transport: 'tcp' as const, ports: ports(0) }] }] };
    assert.equal(planRules(config).table.chains.length, 1);
    const clash = { ...config, listeners: [config.listeners[0] as ListenerRules, { ...dns, intercept: [{ transport: 'tcp' as const, ports: [...ports(0), { from: 65533, to: 65533 }] }] }] };
    assert.throws(() => planRules(clash), /listeners\[1\]\.intercept: tcp:65533 is already intercepted by listeners\[0\] \(web\)/);
  });
});

describe('draining listeners', () => {
  const tcp = (port: number) => ({ transport: 'tcp' as const, ports: [{ from: port, to: port }] });
  const udp = (port: number) => ({ transport: 'udp' as const, ports: [{ from: port, to: port }] });
  const web: ListenerRules = { name: 'web', port: 8100, addresses: {}, families: [4, 6], intercept: [tcp(80)], upstreamMark: 0x2 };
  const dns: ListenerRules = { name: 'dns', port: 8153, addresses: {}, families: [4, 6], intercept: [udp(53)], upstreamMark: 0x4 };
  const dnsOnly: RulesConfig = { ...BASE_CONFIG, listeners: [dns] };

  it('keep the divert rule of their transport and their upstream mark, but get no tproxy or fail-closed rule', () => {
    const text = rulesOf({ ...dnsOnly, draining: [web] }).map((r) => nftRuleText(r.rule));
    assert.deepEqual(text.filter((t) => /divert|upstream|tcp dport/.test(t)).map((t) => /comment "(.*)"/.exec(t)?.[1]), [
      'tproxy: upstream traffic of the proxy mark 0x00000004',
      'tproxy: upstream traffic of the proxy mark 0x00000002',
      'tproxy: divert udp ipv4',
      'tproxy: divert tcp ipv4',
      'tproxy: divert udp ipv6',
      'tproxy: divert tcp ipv6',
    ]);
    assert.ok(!text.some((t) => t.includes(':8100')), 'nothing is sent to the draining listener');
    const iptables = JSON.stringify(plannedIptablesState(planRules({ ...dnsOnly, draining: [web] }), 4));
    assert.match(iptables, /-p tcp -m tcp ! --tcp-flags SYN,ACK SYN -m socket --transparent -m comment --comment \\"tproxy: divert tcp ipv4\\" -j TPROXY_RULES_DIVERT/);
    assert.doesNotMatch(iptables, /--on-port 8100/);
    // Without the draining listener the TCP divert rule is gone: its flows would no longer reach their socket.
    assert.deepEqual(rulesOf(dnsOnly).filter((r) => r.rule.role === 'divert').map((r) => r.rule.comment), ['tproxy: divert udp ipv4', 'tproxy: divert udp ipv6']);
  });

  it('keep the output chain from rerouting their upstream traffic', () => {
    const output = rulesOf({ ...dnsOnly, localTraffic: { excludeUids: [], excludeGids: [] }, draining: [web] }, 'output');
    assert.deepEqual(output.filter((r) => r.rule.role === 'upstream-return').map((r) => r.rule.matches), [[{ type: 'mark', mark: { value: 0x4, mask: 0xffffffff } }], [{ type: 'mark', mark: { value: 0x2, mask: 0xffffffff } }]]);
    assert.ok(!output.some((r) => r.rule.transport === 'tcp'));
  });

  it('change nothing when there are none', () => {
    for (const config of [BASE_CONFIG, dnsOnly]) {
      const plan = planRules({ ...config, draining: [] });
      assert.deepEqual([plan.table, plan.policyRoutes, plan.record], [planRules(config).table, planRules(config).policyRoutes, planRules(config).record]);
      assert.equal(renderNftScript(plan), renderNftScript(planRules(config)));
    }
  });

  it('may share port and traffic with the new listeners (the old version of a changed one), but are validated', () => {
    const changed = { ...web, upstreamMark: 0x8 };
    assert.deepEqual(rulesOf({ ...dnsOnly, listeners: [changed], draining: [web] }).filter((r) => r.rule.role === 'tproxy').length, 2);
    assert.throws(() => planRules({ ...dnsOnly, families: [6], listeners: [{ ...dns, families: [6] }], draining: [web] }), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && e.details.field === 'draining[0].families');
    assert.throws(() => planRules({ ...dnsOnly, draining: [{ ...web, upstreamMark: 0x3 }] }), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && e.details.field === 'draining[0].upstreamMark');
    assert.throws(() => planRules({ ...dnsOnly, draining: [{ ...web, upstreamMark: 0x3 }] }), new RegExp(`listener ${web.name} is still draining, and its flows keep upstream mark 0x00000003, which the new fwmark 0x00000001 matches under mask 0x00000001: keep the old fwmark until it has drained \\(reload\\.drainMs\\), then change it`));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTproxyError } from '../../../src/core/errors.js';
import { DEFAULT_RULES_CONFIG, ipRouteArgs, ipRuleArgs, markSetExpression, planRules, renderNftDeleteScript, renderNftScript, type RulesConfig } from '../../../src/core/rules/plan.js';

const classic: RulesConfig = { ...DEFAULT_RULES_CONFIG, intercept: [{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }, { transport: 'udp', ports: [{ from: 80, to: 80 }] }] };

describe('rule planning', () => {
  it('renders the classic setup as one atomic, idempotent nft script', () => {
    const script = renderNftScript(planRules(classic));
    assert.equal(
      script,
      `table inet tproxy {}
delete table inet tproxy
table inet tproxy {
  comment "managed by tproxy; removed by tproxy rules cleanup"
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    meta mark 0x00000002 return comment "tproxy: upstream traffic of the proxy"
    meta l4proto tcp tcp flags & (syn | ack) != syn socket transparent 1 meta mark set meta mark and 0xfffffffe or 0x00000001 counter accept comment "tproxy: divert tcp"
    meta l4proto udp socket transparent 1 meta mark set meta mark and 0xfffffffe or 0x00000001 counter accept comment "tproxy: divert udp"
    ip daddr { 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4, 255.255.255.255 } return comment "tproxy: bypass ipv4"
    ip6 daddr { ::1, fe80::/10, ff00::/8 } return comment "tproxy: bypass ipv6"
    fib daddr type local return comment "tproxy: bypass local destinations"
    meta nfproto ipv4 meta l4proto tcp tcp dport 80 tproxy ip to :8000 meta mark set meta mark and 0xfffffffe or 0x00000001 counter accept comment "tproxy: intercept tcp ipv4"
    meta nfproto ipv4 meta l4proto udp udp dport 80 tproxy ip to :8000 meta mark set meta mark and 0xfffffffe or 0x00000001 counter accept comment "tproxy: intercept udp ipv4"
    meta nfproto ipv6 meta l4proto tcp tcp dport 80 tproxy ip6 to :8000 meta mark set meta mark and 0xfffffffe or 0x00000001 counter accept comment "tproxy: intercept tcp ipv6"
    meta nfproto ipv6 meta l4proto udp udp dport 80 tproxy ip6 to :8000 meta mark set meta mark and 0xfffffffe or 0x00000001 counter accept comment "tproxy: intercept udp ipv6"
  }
}
`,
    );
  });

  it('orders rules: upstream return, divert, bypass, then tproxy', () => {
    const roles = planRules(classic).table.chains[0]?.rules.map((r) => r.role);
    assert.deepEqual(roles, ['upstream-return', 'divert', 'divert', 'bypass', 'bypass', 'bypass', 'tproxy', 'tproxy', 'tproxy', 'tproxy']);
  });

  it('keeps pure SYNs out of the TCP divert rule (TIME_WAIT reuse goes to the tproxy rule)', () => {
    const divert = planRules(classic).table.chains[0]?.rules.find((r) => r.role === 'divert' && r.transport === 'tcp');
    assert.match(divert?.text ?? '', /tcp flags & \(syn \| ack\) != syn socket transparent 1/);
  });

  it('puts the counter after tproxy so it only counts packets that found a transparent socket', () => {
    for (const rule of planRules(classic).table.chains[0]?.rules.filter((r) => r.role === 'tproxy') ?? []) {
      assert.ok(rule.text.indexOf('tproxy ip') < rule.text.indexOf('counter'), rule.text);
    }
  });

  it('plans IPv4 only, with port lists, ranges and interfaces', () => {
    const plan = planRules({ ...classic, families: [4], interfaces: ['eth1', 'wg0'], intercept: [{ transport: 'tcp', ports: [{ from: 80, to: 80 }, { from: 8000, to: 8100 }] }] });
    const tproxy = plan.table.chains[0]?.rules.filter((r) => r.role === 'tproxy') ?? [];
    assert.equal(tproxy.length, 1);
    assert.equal(tproxy[0]?.text.startsWith('iifname { "eth1", "wg0" } meta nfproto ipv4 meta l4proto tcp tcp dport { 80, 8000-8100 } tproxy ip to :8000'), true);
    assert.equal(plan.policyRoutes.length, 1);
    assert.ok(!renderNftScript(plan).includes('ip6 daddr'));
  });

  it('plans policy routing for each family', () => {
    const plan = planRules(classic);
    assert.deepEqual(plan.policyRoutes.map((r) => ipRuleArgs(r, 'add')), [
      ['-4', 'rule', 'add', 'fwmark', '0x00000001/0x00000001', 'lookup', '100', 'priority', '9000'],
      ['-6', 'rule', 'add', 'fwmark', '0x00000001/0x00000001', 'lookup', '100', 'priority', '9000'],
    ]);
    assert.deepEqual(plan.policyRoutes.map((r) => ipRouteArgs(r, 'replace')), [
      ['-4', 'route', 'replace', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100'],
      ['-6', 'route', 'replace', 'local', '::/0', 'dev', 'lo', 'table', '100'],
    ]);
    assert.equal(renderNftDeleteScript(plan), 'delete table inet tproxy\n');
  });

  it('sets marks under a mask without touching other bits', () => {
    assert.equal(markSetExpression(0x1, 0x1), 'meta mark set meta mark and 0xfffffffe or 0x00000001');
    assert.equal(markSetExpression(0x100, 0xff00), 'meta mark set meta mark and 0xffff00ff or 0x00000100');
    assert.equal(markSetExpression(0x7, 0xffffffff), 'meta mark set 0x00000007');
  });

  const invalid: [string, Partial<RulesConfig>, RegExp][] = [
    ['a table name with a space', { tableName: 'my table' }, /tableName: "my table" must be a letter/],
    ['port 0', { listenPort: 0 }, /listenPort: 0 must be a port/],
    ['no family', { families: [] }, /at least one of IPv4 or IPv6/],
    ['nothing to intercept', { intercept: [] }, /nothing to intercept/],
    ['a reversed range', { intercept: [{ transport: 'tcp', ports: [{ from: 90, to: 80 }] }] }, /tcp:90-80 is not a port or range/],
    ['an upstream mark equal to the fwmark', { upstreamMark: 0x1 }, /upstream mark 0x00000001 matches the tproxy fwmark/],
    ['an upstream mark that matches under the mask', { upstreamMark: 0x3 }, /would be routed back to itself/],
    ['a mark outside its mask', { fwmark: 0x2, fwmarkMask: 0x1 }, /has no bit inside mask/],
    ['the main table', { routeTable: 254 }, /not 253 default, 254 main, 255 local/],
    ['a rule priority after main', { rulePriority: 32766 }, /from 1 to 32765/],
    ['a bad interface name', { interfaces: ['a very long interface name'] }, /is not an interface name/],
  ];
  for (const [what, change, message] of invalid) {
    it(`refuses ${what}`, () => {
      assert.throws(() => planRules({ ...classic, ...change }), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && message.test(e.message));
    });
  }
});

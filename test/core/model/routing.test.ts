import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../../../src/core/net/address.js';
import { describeIpRule, parseIpRules, parseRoutes, routeLookup, type FlowKey } from '../../../src/core/model/routing.js';

// Real `ip -j rule` / `ip -j route show table all` output (iproute2 6.1).
const RULES4 = '[{"priority":0,"src":"all","table":"local"},{"priority":100,"src":"all","fwmark":"0x1","fwmask":"0x3","table":"100"},{"priority":200,"not":null,"src":"192.0.2.0","srclen":24,"dst":"10.0.0.0","dstlen":8,"iif":"d0","table":"main"},{"priority":300,"src":"all","action":"blackhole"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"}]';
const ROUTES4 =
  '[{"type":"unreachable","dst":"10.2.0.0/16","table":"7","flags":[]},{"type":"local","dst":"default","dev":"lo","table":"100","scope":"host","flags":[]},{"type":"throw","dst":"10.4.0.0/16","table":"100","flags":[]},{"type":"blackhole","dst":"10.1.0.0/16","flags":[]},{"dst":"203.0.113.0/24","dev":"eth1","protocol":"kernel","scope":"link","prefsrc":"203.0.113.1","flags":[]},{"dst":"203.0.113.20","gateway":"203.0.113.2","dev":"eth2","metric":5,"flags":[]},{"dst":"203.0.113.20","gateway":"203.0.113.3","dev":"eth3","metric":1,"flags":[]},{"type":"local","dst":"127.0.0.0/8","dev":"lo","table":"local","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1","flags":[]},{"type":"local","dst":"::1","dev":"lo","table":"local","flags":[]}]';

const rules = parseIpRules(RULES4, 4);
const routes = parseRoutes(ROUTES4, 4);
const flow = (daddr: string, over: Partial<FlowKey> = {}): FlowKey => ({ family: 4, saddr: parseIp('198.51.100.10'), daddr: parseIp(daddr), iif: 'eth0', mark: 0, ...over });

describe('routing', () => {
  it('reads ip rules with not, from/to prefixes, iif, fwmark/mask and actions', () => {
    assert.deepEqual(rules.map(describeIpRule), [
      '0: from all lookup local',
      '100: from all fwmark 0x1/0x3 lookup 100',
      '200: not from 192.0.2.0/24 to 10.0.0.0/8 iif d0 lookup main',
      '300: from all blackhole',
      '32766: from all lookup main',
      '32767: from all lookup default',
    ]);
  });

  it('reads routes of every table, skipping the other family', () => {
    assert.equal(routes.length, 8);
    assert.deepEqual(routes.filter((r) => r.table === 'main').map((r) => r.type), ['blackhole', 'unicast', 'unicast', 'unicast']);
  });

  const cases: [string, FlowKey, string, RegExp?][] = [
    ['fwmark with mask selects table 100: local', flow('203.0.113.20', { mark: 0x5 }), 'local'],
    ['mark outside the mask: not selected; the negated rule selects it (iif differs) and main forwards', flow('203.0.113.20', { mark: 0x4 }), 'unicast', /^200: not from 192\.0\.2\.0\/24 to 10\.0\.0\.0\/8 iif d0 lookup main: 203\.0\.113\.20 via 203\.0\.113\.3 dev eth3 table main$/m],
    ['throw in table 100 goes on to the next rules', flow('10.4.1.1', { mark: 1 }), 'blackhole', /throw, next rule/],
    ['the negated rule does not select its own selector', flow('10.1.2.3', { iif: 'd0', saddr: parseIp('192.0.2.9') }), 'blackhole', /300: from all blackhole/],
    ['a blackhole route in main', flow('10.1.2.3', { iif: 'd0' }), 'blackhole', /blackhole 10\.1\.0\.0\/16/],
  ];
  for (const [name, f, kind, trace] of cases) {
    it(name, () => {
      const { decision, tried } = routeLookup({ rules, routes }, f);
      assert.equal(decision.kind, kind);
      if (trace) assert.match(tried.map((t) => `${describeIpRule(t.rule)}: ${t.result}`).join('\n'), trace);
    });
  }

  it('longest prefix wins, then the lowest metric', () => {
    const { decision } = routeLookup({ rules: parseIpRules('[{"priority":32766,"src":"all","table":"main"}]', 4), routes }, flow('203.0.113.20'));
    assert.equal(decision.kind, 'unicast');
    assert.equal(decision.kind === 'unicast' && decision.route.dev, 'eth3');
  });

  it('no matching rule or route: none', () => {
    assert.equal(routeLookup({ rules: [], routes }, flow('203.0.113.20')).decision.kind, 'none');
  });
});

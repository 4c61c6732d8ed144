// The reply routing of the mmproxy listeners: what rulesConfigOf asks for from an mmproxy section,
// what the planner makes of it, and how apply / remove treat the loopback rule (fake host).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RulesController } from '../../../src/control/apply.js';
import { loadConfig } from '../../../src/core/config/document.js';
import { mmproxyRulesOf, rulesConfigOf } from '../../../src/core/config/rules-of.js';
import { isTproxyError } from '../../../src/core/errors.js';
import { isPolicyRule } from '../../../src/core/rules/ip-json.js';
import { planRules, plannedRules } from '../../../src/core/rules/plan.js';
import { ipRuleArgs } from '../../../src/core/rules/policy-routing.js';
import { decodeRecord, encodeRecord, recordedPolicyRoutes } from '../../../src/core/rules/record.js';
import { validateRulesConfig } from '../../../src/core/rules/validate.js';
import { FakeHost } from '../../helpers/fake-host.js';
import { BASE_CONFIG, GOLDEN_CONFIGS } from '../../helpers/rules-configs.js';

const config = (mmproxy: readonly Record<string, unknown>[], listeners: readonly Record<string, unknown>[] = [{ port: 8000, intercept: ['udp:53'] }]) =>
  loadConfig({ file: 'tproxy.yaml', text: JSON.stringify({ listeners, mmproxy }) });

describe('mmproxy reply routing: from the mmproxy section', () => {
  it('asks for nothing without mmproxy listeners', () => {
    assert.equal(mmproxyRulesOf(config([])), undefined);
    assert.equal(rulesConfigOf(config([])).mmproxy, undefined);
  });

  it('a loopback backend needs the loopback rule of its family; another host the divert; the header destination both', () => {
    const planned = (m: readonly Record<string, unknown>[]) => {
      const { backends: _b, ...rest } = mmproxyRulesOf(config(m))!;
      return rest;
    };
    assert.deepEqual(planned([{ name: 'a', backend4: '127.0.0.1:80', backend6: '[::1]:80' }]), { loopback: [4, 6], divert: [], transports: ['tcp'], upstreamMarks: [2] });
    assert.deepEqual(planned([{ name: 'a', backend4: '203.0.113.20:80', backend6: '[2001:db8::20]:80', upstreamMark: '0x4' }]), { loopback: [], divert: [4, 6], transports: ['tcp'], upstreamMarks: [4] });
    assert.deepEqual(planned([{ name: 'a', backend4: '127.0.0.2:80' }, { name: 'b', listen: ['0.0.0.0:9000'], backend4: '203.0.113.20:80', backend6: '[::1]:80' }]), { loopback: [4, 6], divert: [4, 6], transports: ['tcp'], upstreamMarks: [2] });
    // protocol udp: the UDP divert rule for its replies (beside TCP's when both kinds are configured).
    assert.deepEqual(planned([{ name: 'a', protocol: 'udp', backend4: '203.0.113.20:53' }]).transports, ['udp']);
    assert.deepEqual(planned([{ name: 'a', protocol: 'udp' }, { name: 'b', listen: ['0.0.0.0:9000'] }]).transports, ['tcp', 'udp']);
    assert.deepEqual(mmproxyRulesOf(config([{ name: 'a', backend4: '127.0.0.2:80' }]))?.backends, [
      { listener: 'a', transport: 'tcp', family: 4, address: '127.0.0.2', port: 80, upstreamMark: 2 },
      { listener: 'a', transport: 'tcp', family: 6, upstreamMark: 2 },
    ]);
    assert.deepEqual(mmproxyRulesOf(config([{ name: 'd', protocol: 'udp', backend6: '[::1]:53' }]))?.backends?.map((b) => [b.transport, b.family]), [['udp', 4], ['udp', 6]]);
  });

  it('adds the mmproxy families to an IPv4-only configuration', () => {
    const rules = rulesConfigOf(config([{ name: 'a', backend4: '127.0.0.1:80', backend6: '[::1]:80' }], [{ port: 8000, intercept: ['udp:53'], families: [4] }]));
    assert.deepEqual(rules.families, [4, 6]);
    assert.deepEqual(planRules(rules).record.loopback, [4, 6]);
  });

  it('refuses an mmproxy upstream mark that the fwmark matches, naming the entry and its setting', () => {
    assert.throws(
      () => config([{ name: 'a', upstreamMark: '0x3' }]),
      (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && /mmproxy\[0\]\.upstreamMark: upstream mark 0x00000003 matches the tproxy fwmark under mask 0x00000001: the connections to the backend would be routed back/.test(e.message),
    );
  });

  it('refuses mmproxy families the rules do not have', () => {
    assert.throws(
      () => validateRulesConfig({ ...BASE_CONFIG, families: [4], listeners: BASE_CONFIG.listeners.map((l) => ({ ...l, families: [4] })), mmproxy: { loopback: [6], divert: [], transports: ['tcp'], upstreamMarks: [2] } }),
      (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && /IPv6 is not among the families of the rules/.test(e.message),
    );
  });
});

describe('mmproxy reply routing: the plan', () => {
  const plan = planRules(GOLDEN_CONFIGS.mmproxy!.config);

  it('has the divert rule of TCP although the transparent listener intercepts UDP only, and returns the mmproxy mark', () => {
    const pre = plannedRules(plan).filter((r) => r.chain.name === 'prerouting').map((r) => r.rule);
    assert.deepEqual(pre.filter((r) => r.role === 'divert').map((r) => `${r.transport} ${r.family}`), ['udp 4', 'tcp 4', 'udp 6', 'tcp 6']);
    assert.deepEqual(pre.filter((r) => r.role === 'upstream-return').map((r) => r.comment), ['tproxy: upstream traffic of the proxy mark 0x00000002', 'tproxy: upstream traffic of the proxy mark 0x00000004']);
    assert.equal(BASE_CONFIG.listeners.length, 1, 'without mmproxy, the plan diverts only what its listeners intercept');
  });

  it('the loopback rule: go-mmproxy\'s `from 127.0.0.0/8 iif lo`, to our table at our priority', () => {
    const loopback = plan.policyRoutes.filter((r) => 'from' in r.rule);
    assert.deepEqual(
      loopback.map((r) => ipRuleArgs(r, 'add').join(' ')),
      ['-4 rule add from 127.0.0.0/8 iif lo lookup 100 priority 9000', '-6 rule add from ::1/128 iif lo lookup 100 priority 9000'],
    );
    assert.deepEqual(loopback.map((r) => ipRuleArgs(r, 'del').join(' ')), ['-4 rule del from 127.0.0.0/8 iif lo lookup 100 priority 9000', '-6 rule del from ::1/128 iif lo lookup 100 priority 9000']);
  });

  it('records the loopback families, and the record gives back the same policy routing', () => {
    const text = encodeRecord(plan.record);
    assert.equal(text, 'tproxy v1 families=4,6 fwmark=0x1/0x1 table=100 priority=9000 loopback=4,6');
    assert.deepEqual(recordedPolicyRoutes(decodeRecord(text)!), plan.policyRoutes);
    assert.equal(decodeRecord('tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000')?.loopback, undefined, 'an older record: no loopback rules');
  });

  it('knows its loopback rule as ip prints it, and nothing wider or narrower', () => {
    const [v4, v6] = plan.policyRoutes.filter((r) => 'from' in r.rule);
    assert.ok(isPolicyRule({ priority: 9000, src: '127.0.0.0', srclen: 8, iif: 'lo', table: '100' }, v4!));
    assert.ok(isPolicyRule({ priority: 9000, src: '::1', iif: 'lo', table: '100' }, v6!));
    assert.ok(!isPolicyRule({ priority: 9000, src: '127.0.0.0', srclen: 16, iif: 'lo', table: '100' }, v4!));
    assert.ok(!isPolicyRule({ priority: 9000, src: '127.0.0.0', srclen: 8, table: '100' }, v4!), 'without iif lo it would take forwarded packets too');
    assert.ok(!isPolicyRule({ priority: 9000, src: '127.0.0.0', srclen: 8, iif: 'lo', fwmark: '0x1', table: '100' }, v4!));
    assert.ok(!isPolicyRule({ priority: 9000, src: 'all', fwmark: '0x1', fwmask: '0x1', table: '100' }, v4!));
  });
});

describe('mmproxy reply routing: apply and remove (fake host)', () => {
  const plan = planRules(GOLDEN_CONFIGS.mmproxy!.config);
  const controller = (host: FakeHost): RulesController => new RulesController(host, { backend: 'nft', isProcessAlive: () => false });

  it('adds each local route once and every rule, then is idempotent', async () => {
    const host = new FakeHost({ plans: [plan] });
    assert.equal((await controller(host).apply(plan)).changed, true);
    assert.deepEqual(
      host.lines().filter((l) => / (add|del) /.test(l)),
      [
        'ip -4 route add local 0.0.0.0/0 dev lo table 100',
        'ip -6 route add local ::/0 dev lo table 100',
        'ip -4 rule add fwmark 0x00000001/0x00000001 lookup 100 priority 9000',
        'ip -6 rule add fwmark 0x00000001/0x00000001 lookup 100 priority 9000',
        'ip -4 rule add from 127.0.0.0/8 iif lo lookup 100 priority 9000',
        'ip -6 rule add from ::1/128 iif lo lookup 100 priority 9000',
      ],
    );
    const again = new FakeHost({ plans: [plan], applied: true });
    assert.equal((await controller(again).apply(plan)).changed, false);
    assert.ok(!again.lines().some((l) => / (add|del) /.test(l)), again.lines().join('\n'));
  });

  it('status reports each rule and each route once', async () => {
    const host = new FakeHost({ plans: [plan], applied: true });
    const status = await controller(host).status(plan);
    assert.equal(status.inPlace, true);
    const names = status.pieces.filter((p) => p.kind === 'ip-rule' || p.kind === 'ip-route').map((p) => p.name);
    assert.equal(names.length, 6);
    assert.equal(new Set(names).size, 6);
  });

  it('remove deletes the loopback rules with the others, the shared route once per family', async () => {
    const host = new FakeHost({ plans: [plan], applied: true });
    const result = await controller(host).remove(plan);
    assert.deepEqual({ rules: result.rules, routes: result.routes }, { rules: 4, routes: 2 });
    assert.deepEqual(host.rules, { 4: [], 6: [] });
    assert.deepEqual(host.routes, { 4: [], 6: [] });
  });

  it('an apply without mmproxy removes the loopback rules an earlier apply recorded, keeping the shared route', async () => {
    const { mmproxy: _mmproxy, ...rest } = GOLDEN_CONFIGS.mmproxy!.config;
    const without = planRules(rest);
    const host = new FakeHost({ plans: [plan, without], applied: true });
    assert.equal((await controller(host).apply(without)).changed, true);
    const changes = host.lines().filter((l) => / (add|del) /.test(l));
    assert.deepEqual(changes, ['ip -4 rule del from 127.0.0.0/8 iif lo lookup 100 priority 9000', 'ip -6 rule del from ::1/128 iif lo lookup 100 priority 9000']);
  });
});

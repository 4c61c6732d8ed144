// The nftables backend against the real nft and ip binaries in a lab router namespace, with real
// traffic from the client namespace through a running proxy.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RulesController } from '../../src/control/apply.js';
import { isTproxyError } from '../../src/core/errors.js';
import { singleListenerRules, type RulesConfig } from '../../src/core/rules/config.js';
import { planRules } from '../../src/core/rules/plan.js';
import type { RulesPlan } from '../../src/core/rules/planned.js';
import { LAB_ADDRESSES as A, Lab } from '../../src/lab/topology.js';
import { commandFailedError, type CommandResult, type CommandRunner, type RunOptions } from '../../src/sys/exec.js';
import { notInPlace, packets, probe, startEchoServer, startProxy } from '../helpers/lab-flows.js';
import { GOLDEN_CONFIGS, rulesWith } from '../helpers/rules-configs.js';

const CONFIG: RulesConfig = singleListenerRules([{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }, { transport: 'udp', ports: [{ from: 80, to: 80 }] }], { port: 8100 }, { tableName: 'tpx_nft', routeTable: 123, rulePriority: 9123 });

/** Fails the first command that starts with `prefix` (after running nothing), then behaves. */
class FaultyRunner implements CommandRunner {
  private failed = false;
  constructor(
    private readonly inner: CommandRunner,
    private readonly prefix: string,
  ) {}
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult> {
    if (!this.failed && argv.join(' ').startsWith(this.prefix)) {
      this.failed = true;
      return Promise.reject(commandFailedError(argv, { stdout: '', stderr: 'injected failure', exitCode: 1 }));
    }
    return this.inner.run(argv, options);
  }
}

describe('nftables backend in a namespace (root)', () => {
  let lab: Lab;
  const plan = planRules(CONFIG);
  const controller = (runner?: CommandRunner): RulesController => new RulesController(runner ?? lab.runnerFor('router'), { backend: 'nft' });
  const router = async (...argv: string[]): Promise<string> => (await lab.run('router', argv)).stdout;
  /** Everything of the router's policy routing and our table, to compare before and after. */
  // The kernel adds IPv6 link-local routes (fe80::/64, ff00::/8) on its own when a link's address
  // settles, which can fall between two snapshots of a loaded run: they are not the rules' doing.
  const linkLocal = /^(fe80|ff00)/;
  const routes = async (): Promise<string> => JSON.stringify((JSON.parse(await router('ip', '-j', 'route', 'show', 'table', 'all')) as { dst?: string }[]).filter((r) => !linkLocal.test(r.dst ?? '')));
  const snapshot = async (p: RulesPlan = plan): Promise<string> =>
    [await router('ip', '-j', '-4', 'rule'), await router('ip', '-j', '-6', 'rule'), await routes(), (await lab.run('router', ['nft', 'list', 'table', 'inet', p.table.name], { check: false })).stdout].join('\n');

  before(async () => {
    lab = await Lab.create();
    await startEchoServer(lab);
    await startProxy(lab, ['--no-rules', '--listen', '8100', '--intercept', 'tcp:80', '--intercept', 'udp:80']);
    // Other people's state, which nothing of ours may touch.
    await lab.run('router', ['nft', '-f', '-'], { input: 'table ip foreign {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    counter\n  }\n}\n' });
    await lab.run('router', ['ip', 'rule', 'add', 'from', '192.0.2.0/24', 'lookup', '200', 'priority', '20000']);
  });
  after(() => lab.destroy());

  it('applies, and real TCP and UDP traffic over IPv4 and IPv6 is intercepted (the tproxy counters move)', async () => {
    assert.equal((await controller().apply(plan)).changed, true);
    for (const transport of ['tcp', 'udp'] as const) {
      for (const address of [A.server.ipv4, A.server.ipv6]) {
        const result = await probe(lab, 'client', transport, address, `hello ${transport} ${address}`);
        assert.equal(result.ok, true, `${transport} ${address}: ${result.reason ?? ''}`);
        const router = address.includes(':') ? A.routerServerSide.ipv6 : A.routerServerSide.ipv4;
        assert.equal(result.reply?.seen.address, router, 'the server saw the proxy (direct upstream), so the flow went through it');
      }
    }
    const status = await controller().status(plan);
    assert.deepEqual(notInPlace(status), []);
    const counted = packets(status);
    for (const rule of ['tcp ipv4', 'udp ipv4', 'tcp ipv6', 'udp ipv6']) assert.ok((counted[`prerouting: tproxy: intercept ${rule}`] ?? 0) >= 1, `intercept ${rule}: ${JSON.stringify(counted)}`);
    assert.ok((counted['prerouting: tproxy: divert tcp ipv4'] ?? 0) >= 1, 'later packets of the TCP flow were diverted to the proxy');
    assert.equal(counted['prerouting: tproxy: fail closed tcp ipv4'], 0, 'nothing was dropped while the proxy was up');
  });

  it('applies again without changing anything (same handles, counters kept, one ip rule)', async () => {
    const before = await router('nft', '-a', 'list', 'table', 'inet', 'tpx_nft');
    assert.equal((await controller().apply(plan)).changed, false);
    assert.equal(await router('nft', '-a', 'list', 'table', 'inet', 'tpx_nft'), before);
    const rules = JSON.parse(await router('ip', '-j', '-6', 'rule', 'show')) as { priority: number }[];
    assert.equal(rules.filter((r) => r.priority === 9123).length, 1);
  });

  it('reports missing and drifted pieces, and apply puts them back', async () => {
    const table = JSON.parse(await router('nft', '-j', 'list', 'table', 'inet', 'tpx_nft')) as { nftables: { rule?: { handle: number; comment?: string } }[] };
    const handle = table.nftables.find((i) => i.rule?.comment === 'tproxy: intercept udp ipv6')?.rule?.handle;
    await router('nft', 'delete', 'rule', 'inet', 'tpx_nft', 'prerouting', 'handle', `${handle ?? -1}`);
    await router('nft', 'add', 'element', 'inet', 'tpx_nft', 'bypass_saddr4', '{ 192.0.2.0/24 }');
    await router('ip', '-6', 'rule', 'del', 'priority', '9123');
    const status = await controller().status(plan);
    assert.equal(status.inPlace, false);
    assert.deepEqual(notInPlace(status), ['drifted set bypass_saddr4', 'missing prerouting: tproxy: intercept udp ipv6', 'missing ip -6 rule fwmark 0x00000001/0x00000001 lookup 123 priority 9123']);
    assert.equal((await controller().apply(plan)).changed, true);
    assert.deepEqual(notInPlace(await controller().status(plan)), []);
  });

  it('rolls back to the previous state when a step fails, before or after the nft commit', async () => {
    const other = planRules({ ...rulesWith(CONFIG, { intercept: [{ transport: 'tcp', ports: [{ from: 8080, to: 8080 }] }] }), routeTable: 124, rulePriority: 9124 });
    const before = await snapshot();
    for (const step of ['nft -f -', 'ip -6 rule del fwmark 0x00000001/0x00000001 lookup 123']) {
      await assert.rejects(controller(new FaultyRunner(lab.runnerFor('router'), step)).apply(other), (e: unknown) => isTproxyError(e) && /injected failure.*rolled back: the host is as before/.test(e.message), step);
      assert.equal(await snapshot(), before, `after a failure at ${step} the host is as before`);
    }
  });

  it('refuses collisions with marks, tables and priorities used by others, changing nothing', async () => {
    await lab.run('router', ['nft', '-f', '-'], { input: 'table inet marker {\n  chain c {\n    type filter hook prerouting priority 0; policy accept;\n    meta mark set meta mark | 0x10\n  }\n}\n' });
    const before = await snapshot();
    const cases: [Partial<RulesConfig>, RegExp][] = [
      [{ fwmark: 0x10, fwmarkMask: 0x10 }, /fwmark 0x10\/0x10 is already used: table inet marker chain c handle \d+ \(sets mark bits 0x00000010\)\. Choose mark bits nobody else uses, e\.g\. --fwmark 0x00000001/],
      [{ rulePriority: 20000 }, /rule priority 20000 is already used by `ip -4 rule 20000: from 192.0.2.0\/24 lookup 200`: choose another --rule-priority, e.g. 20001/],
      [{ routeTable: 200 }, /route table 200 is already used by `ip -4 rule 20000: from 192.0.2.0\/24 lookup 200`/],
    ];
    for (const [change, message] of cases) {
      await assert.rejects(controller().apply(planRules({ ...CONFIG, ...change })), (e: unknown) => isTproxyError(e, 'ERR_CONFLICT') && message.test(e.message), JSON.stringify(change));
    }
    assert.equal(await snapshot(), before);
    await lab.run('router', ['nft', 'delete', 'table', 'inet', 'marker']);
  });

  it('fails closed while no proxy socket exists: reject answers at once, drop counts; fail-open lets traffic pass', async () => {
    // Port 8199 has no listener: the tproxy rules find no socket, as when the proxy is down.
    const down = (failMode: RulesConfig['failMode']): RulesPlan => planRules({ ...rulesWith(CONFIG, { port: 8199 }), failMode });
    await controller().apply(down('reject'));
    const rejected = await probe(lab, 'client', 'tcp', A.server.ipv4, 'rejected', 5000);
    assert.deepEqual([rejected.ok, rejected.reason], [false, 'ECONNREFUSED']);
    await controller().apply(down('drop'));
    const dropped = await probe(lab, 'client', 'udp', A.server.ipv6, 'dropped', 500);
    assert.equal(dropped.ok, false);
    assert.ok((packets(await controller().status(down('drop')))['prerouting: tproxy: fail closed udp ipv6'] ?? 0) >= 1);
    await controller().apply(down('open'));
    const passed = await probe(lab, 'client', 'tcp', A.server.ipv4, 'passed');
    assert.equal(passed.reply?.seen.address, A.client.ipv4, 'fail-open: forwarded untouched, the server saw the client');
    await controller().apply(plan);
  });

  it('cleans up exactly ours, leaves the foreign table and ip rule alone, and succeeds with nothing left', async () => {
    assert.deepEqual(await controller().remove(plan), { table: true, rules: 2, routes: 2 });
    assert.deepEqual(await controller().remove(plan), { table: false, rules: 0, routes: 0 });
    assert.equal((await router('nft', 'list', 'tables')).trim(), 'table ip foreign');
    const rules = await router('ip', '-4', 'rule');
    assert.match(rules, /^20000:\tfrom 192\.0\.2\.0\/24 lookup 200$/m);
    assert.doesNotMatch(`${rules}${await router('ip', '-6', 'rule')}`, /fwmark/);
    assert.deepEqual((JSON.parse(await router('ip', '-N', '-j', 'route', 'show', 'table', 'all')) as { table?: string }[]).filter((r) => r.table === '123'), []);
  });

  it('applies every golden configuration and reads it back in place (after cleanup: they share its mark)', async () => {
    for (const [name, { config }] of Object.entries(GOLDEN_CONFIGS)) {
      const golden = planRules({ ...config, tableName: `g_${name.replace(/-/g, '_')}`.slice(0, 31), routeTable: 300, rulePriority: 9300 });
      try {
        await controller().apply(golden);
        assert.deepEqual(notInPlace(await controller().status(golden)), [], name);
      } finally {
        await controller().remove(golden);
      }
    }
  });
});

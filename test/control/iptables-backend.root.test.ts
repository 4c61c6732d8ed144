// The iptables backend, both iptables-restore flavours (legacy and nft), against the real binaries
// in a lab router namespace, with real traffic through a running proxy.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RulesController } from '../../src/control/apply.js';
import type { BackendName } from '../../src/control/backend.js';
import { isTproxyError } from '../../src/core/errors.js';
import { singleListenerRules, type RulesConfig } from '../../src/core/rules/config.js';
import { planRules } from '../../src/core/rules/plan.js';
import { LAB_ADDRESSES as A, Lab } from '../../src/lab/topology.js';
import { commandFailedError, findExecutable, type CommandResult, type CommandRunner, type RunOptions } from '../../src/sys/exec.js';
import { notInPlace, packets, probe, startEchoServer, startProxy } from '../helpers/lab-flows.js';
import { GOLDEN_CONFIGS, rulesWith } from '../helpers/rules-configs.js';

const FLAVOURS = (['legacy', 'nft'] as const).filter((f) => findExecutable(`iptables-${f}-restore`) && findExecutable(`ip6tables-${f}-restore`));

const CONFIG: RulesConfig = singleListenerRules([{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }, { transport: 'udp', ports: [{ from: 80, to: 80 }] }], { port: 8100 }, { tableName: 'tpx_ipt', routeTable: 125, rulePriority: 9125 });

class FailOnce implements CommandRunner {
  private failed = false;
  constructor(
    private readonly inner: CommandRunner,
    private readonly line: string,
  ) {}
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult> {
    if (!this.failed && argv.join(' ') === this.line) {
      this.failed = true;
      return Promise.reject(commandFailedError(argv, { stdout: '', stderr: 'injected failure', exitCode: 1 }));
    }
    return this.inner.run(argv, options);
  }
}

describe('iptables backend in a namespace (root)', () => {
  let lab: Lab;
  const plan = planRules(CONFIG);
  const router = async (...argv: string[]): Promise<string> => (await lab.run('router', argv)).stdout;

  before(async () => {
    assert.ok(FLAVOURS.length > 0, 'iptables is installed (scripts/setup.sh installs it)');
    lab = await Lab.create();
    await startEchoServer(lab);
    await startProxy(lab, ['--no-rules', '--listen', '8100', '--intercept', 'tcp:80', '--intercept', 'udp:80']);
  });
  after(() => lab.destroy());

  for (const flavour of FLAVOURS) {
    const backend: BackendName = `iptables-${flavour}`;
    const controller = (runner?: CommandRunner): RulesController => new RulesController(runner ?? lab.runnerFor('router'), { backend });
    const ours = async (): Promise<string> => {
      const text = `${await router(`iptables-${flavour}-save`, '-t', 'mangle')}${await router(`ip6tables-${flavour}-save`, '-t', 'mangle')}`;
      return text.split('\n').filter((l) => /TPX_IPT|tproxy/.test(l)).join('\n');
    };

    it(`${backend}: applies, intercepts TCP/IPv4 and UDP/IPv6 (counters move), applies again unchanged`, async () => {
      await router(`iptables-${flavour}`, '-t', 'mangle', '-A', 'PREROUTING', '-s', '192.0.2.0/24', '-j', 'RETURN');
      assert.equal((await controller().apply(plan)).changed, true);
      for (const [transport, address] of [['tcp', A.server.ipv4], ['udp', A.server.ipv6]] as const) {
        const result = await probe(lab, 'client', transport, address, `via ${backend}`);
        assert.equal(result.ok, true, `${transport} ${address}: ${result.reason ?? ''}`);
        assert.equal(result.reply?.seen.address, address.includes(':') ? A.routerServerSide.ipv6 : A.routerServerSide.ipv4, 'the flow went through the proxy');
      }
      const status = await controller().status(plan);
      assert.deepEqual(notInPlace(status), []);
      assert.ok((packets(status)['iptables TPX_IPT_PRE: tproxy: intercept tcp ipv4'] ?? 0) >= 1, JSON.stringify(packets(status)));
      assert.ok((packets(status)['ip6tables TPX_IPT_PRE: tproxy: intercept udp ipv6'] ?? 0) >= 1);
      const before = await ours();
      assert.equal((await controller().apply(plan)).changed, false);
      assert.equal(await ours(), before);
    });

    it(`${backend}: a failure in the IPv6 transaction rolls back the IPv4 one too`, async () => {
      const other = planRules(rulesWith(CONFIG, { intercept: [{ transport: 'tcp', ports: [{ from: 8080, to: 8080 }] }] }));
      const before = await ours();
      const failing = new FailOnce(lab.runnerFor('router'), `ip6tables-${flavour}-restore -w 10 --noflush`);
      await assert.rejects(controller(failing).apply(other), (e: unknown) => isTproxyError(e) && /injected failure \(rolled back: the host is as before\)/.test(e.message));
      assert.equal(await ours(), before);
    });

    it(`${backend}: applies every golden configuration it can express and reads it back in place`, async () => {
      await controller().remove(plan);
      for (const [name, { config, iptables }] of Object.entries(GOLDEN_CONFIGS)) {
        if (!iptables) continue;
        const golden = planRules({ ...config, tableName: 'golden', routeTable: 300, rulePriority: 9300 });
        try {
          await controller().apply(golden);
          assert.deepEqual(notInPlace(await controller().status(golden)), [], name);
        } finally {
          await controller().remove(golden);
        }
      }
      await controller().apply(plan);
    });

    it(`${backend}: cleanup removes exactly ours, leaves the foreign rule, and succeeds with nothing left`, async () => {
      assert.deepEqual(await controller().remove(plan), { table: true, rules: 2, routes: 2 });
      assert.deepEqual(await controller().remove(plan), { table: false, rules: 0, routes: 0 });
      assert.equal(await ours(), '');
      assert.match(await router(`iptables-${flavour}-save`, '-t', 'mangle'), /^-A PREROUTING -s 192\.0\.2\.0\/24 -j RETURN$/m);
      assert.doesNotMatch(`${await router('ip', '-4', 'rule')}${await router('ip', '-6', 'rule')}`, /fwmark/);
      await router(`iptables-${flavour}`, '-t', 'mangle', '-D', 'PREROUTING', '-s', '192.0.2.0/24', '-j', 'RETURN');
    });
  }
});

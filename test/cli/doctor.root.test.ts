// `tproxy doctor` on a live host: a working lab router is broken in 14 ways; each time doctor must
// fail with the finding's id, and applying the fix it prints must make doctor pass and traffic
// flow through the proxy again. Doctor is given no options: it asks the daemon running in the
// router's namespace (started with flags, or with a file) for its configuration, and after the
// daemon was killed it reads what our table records. Independent labs run concurrently; faults
// within a lab run in turn.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LAB_ADDRESSES, Lab } from '../../src/lab/topology.js';
import { probe, startEchoServer, startProxy } from '../helpers/lab-flows.js';
import { BIN } from '../helpers/paths.js';
import { doctorRun } from '../../src/cli/commands/doctor.js';
import type { Finding } from '../../src/core/doctor/finding.js';

interface Report {
  readonly status: number;
  readonly findings: readonly Finding[];
  readonly configuration?: { readonly kind: string; readonly text: string };
}

// TCP in the proxy's main process: labs start proxies concurrently on a small shared machine.
const FLAGS = ['--intercept', 'tcp:80', '--intercept', 'udp:80', '--workers', '0'];

class Router {
  proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  constructor(
    readonly lab: Lab,
    readonly flags: readonly string[],
  ) {}

  async start(): Promise<void> {
    await startEchoServer(this.lab);
    this.proxy = await startProxy(this.lab, this.flags);
  }

  async sh(script: string): Promise<void> {
    await this.lab.run('router', ['sh', '-ec', script]);
  }

  /** Doctor in this process, with no options, reading the router through its namespace runner (no node start per run). */
  async doctor(): Promise<Report> {
    const { running, report } = await doctorRun([], this.lab.runnerFor('router'));
    return { ...report, configuration: { kind: running.source.kind, text: '' } };
  }

  /** `tproxy doctor --json` itself, with no options, in the router namespace. */
  async doctorCli(): Promise<Report> {
    const r = await this.lab.run('router', [process.execPath, BIN, 'doctor', '--json'], { check: false, timeoutMs: 60_000 });
    try {
      const report = JSON.parse(r.stdout) as Report;
      assert.equal(r.exitCode, report.status);
      return report;
    } catch (error) {
      throw new Error(`doctor printed no report (exit ${r.exitCode}): ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 500)}`, { cause: error });
    }
  }

  /** Rule handle in a chain, by comment. */
  async handle(table: string, chain: string, comment: string): Promise<number> {
    const out = await this.lab.run('router', ['nft', '-j', 'list', 'chain', 'inet', table, chain]);
    const rule = (JSON.parse(out.stdout) as { nftables: { rule?: { handle: number; comment?: string } }[] }).nftables.find((i) => i.rule?.comment === comment)?.rule;
    assert.ok(rule, `no rule "${comment}" in ${table} ${chain}`);
    return rule.handle;
  }

  /** Apply every fix the report prints for a failure: commands first, starting the proxy last. */
  async applyFixes(report: Report): Promise<string[]> {
    const fixes = [...new Set(report.findings.filter((f) => f.severity === 'fail' && f.fix).map((f) => f.fix!))];
    fixes.sort((a, b) => Number(a.startsWith('tproxy run ')) - Number(b.startsWith('tproxy run ')));
    for (const fix of fixes) {
      if (fix === 'tproxy run') {
        // The daemon is gone: nothing here knows its options but the test.
        this.proxy = await startProxy(this.lab, this.flags);
      } else if (fix.startsWith('tproxy run ')) {
        const args = fix.slice('tproxy run '.length).split(' ');
        assert.deepEqual(args, [...this.flags], 'the printed run command has the options the daemon runs with');
        this.proxy = await startProxy(this.lab, args);
      } else {
        await this.sh(fix.replace(/^tproxy /, `${process.execPath} ${BIN} `));
      }
    }
    return fixes;
  }

  /** A TCP exchange client -> server that must pass through the proxy. */
  async traffic(family: 4 | 6, timeoutMs = 10_000): Promise<boolean> {
    const r = await probe(this.lab, 'client', 'tcp', family === 4 ? LAB_ADDRESSES.server.ipv4 : LAB_ADDRESSES.server.ipv6, 'doctor', timeoutMs);
    if (!r.ok) return false;
    const proxied = this.flags.includes('transparent') ? LAB_ADDRESSES.client : LAB_ADDRESSES.routerServerSide;
    return r.reply?.seen.address === (family === 4 ? proxied.ipv4 : proxied.ipv6);
  }
}

interface Fault {
  /** The finding id doctor must fail with. */
  readonly id: string;
  readonly family?: 4 | 6;
  /** Traffic is not sent while broken (a loop would spin until the fix). */
  readonly noTrafficWhileBroken?: boolean;
  breakIt(r: Router): Promise<void>;
  /** Put back what the fault added and the fix did not remove, for the next fault in the lab. */
  cleanup?(r: Router): Promise<void>;
}

async function healthy(r: Router): Promise<void> {
  const report = await r.doctorCli();
  const fails = report.findings.filter((f) => f.severity === 'fail');
  assert.equal(report.configuration?.kind, 'daemon', `doctor asked the daemon: ${report.configuration?.text ?? ''}`);
  assert.deepEqual(fails, [], 'a healthy setup reports no failure');
  assert.equal(report.status, 0);
  assert.ok(report.findings.some((f) => f.id === 'probe.tcp.ipv4.80' && f.severity === 'pass'));
  assert.ok(!report.findings.some((f) => /^probe\.tcp\.ipv[46]\.443$/.test(f.id)), 'a tcp:80 daemon is not probed on 443 (the default)');
}

async function exercise(r: Router, fault: Fault): Promise<void> {
  const family = fault.family ?? 4;
  await fault.breakIt(r);
  const [broken, flowed] = await Promise.all([r.doctor(), fault.noTrafficWhileBroken ? Promise.resolve(false) : r.traffic(family, 1500)]);
  const failing = broken.findings.filter((f) => f.severity === 'fail');
  assert.equal(broken.status, 1, `${fault.id}: doctor exits 1`);
  assert.ok(failing.some((f) => f.id === fault.id), `${fault.id}: doctor fails with it; it reported ${JSON.stringify(failing.map((f) => [f.id, f.seen]))}`);
  assert.equal(flowed, false, `${fault.id}: the fault really stops traffic`);
  const applied: string[] = [];
  let report = broken;
  for (let round = 0; round < 3 && report.status !== 0; round++) {
    const fixes = await r.applyFixes(report);
    assert.ok(fixes.length > 0, `${fault.id}: a failure without a fix: ${JSON.stringify(report.findings.filter((f) => f.severity === 'fail'))}`);
    applied.push(...fixes);
    report = await r.doctor();
  }
  assert.deepEqual(report.findings.filter((f) => f.severity === 'fail'), [], `${fault.id}: doctor passes after ${JSON.stringify(applied)}`);
  assert.equal(await r.traffic(family), true, `${fault.id}: traffic flows through the proxy after ${JSON.stringify(applied)}`);
  await fault.cleanup?.(r);
}

/** The daemon's options: `flags` with an admin socket of this lab, or (file) the same as a configuration file. */
function daemonOptions(dir: string, flags: readonly string[], file: boolean): string[] {
  const socket = join(dir, 'admin.sock');
  if (!file) return [...flags, '--admin-socket', socket];
  const transparent = flags.includes('transparent') ? '\n    upstream: transparent' : '';
  const local = flags.includes('--local') ? '\n  local: { enabled: true }' : '';
  const path = join(dir, 'tproxy.yaml');
  writeFileSync(path, `listeners:\n  - intercept: [tcp:80, udp:80]${transparent}\ntcp: { workers: 0 }\nrules:\n  failMode: drop${local}\nadmin: { socket: ${socket} }\n`);
  return ['--config', path];
}

async function withLab(flags: readonly string[], faults: readonly Fault[], file = false): Promise<void> {
  const lab = await Lab.create();
  const dir = mkdtempSync(join(tmpdir(), 'tpx-doctor-'));
  try {
    const r = new Router(lab, daemonOptions(dir, flags, file));
    await r.start();
    await healthy(r);
    assert.equal(await r.traffic(4), true, 'the healthy lab passes traffic through the proxy');
    // rules status and status, given no options, find the daemon the same way.
    const rules = await lab.run('router', [process.execPath, BIN, 'rules', 'status'], { check: false });
    // The socket's path as this run made it (TMPDIR may move it from /tmp).
    const socket = join(dir, 'admin.sock').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    assert.match(rules.stdout, new RegExp(`^configuration: the running daemon's \\(tproxy run pid \\d+, asked on ${socket}[;)]`), rules.stderr);
    assert.match(rules.stdout, /^rules: in place \(backend nft, owner tproxy run pid \d+ \(running\)\)$/m);
    assert.equal(rules.exitCode, 0);
    const status = await lab.run('router', [process.execPath, BIN, 'status', '--top', '0']);
    assert.match(status.stdout, new RegExp(`^admin socket: ${socket} \\(found: tproxy run pid \\d+ in this network namespace\\)\\ntproxy `));
    for (const fault of faults) await exercise(r, fault);
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const routingFaults6: Fault[] = [
  { id: 'routing.fwmark-rule.ipv6', family: 6, breakIt: (r) => r.sh('ip -6 rule del fwmark 0x1/0x1 lookup 100 priority 9000') },
  { id: 'routing.local-route.ipv6', family: 6, breakIt: (r) => r.sh('ip -6 route del local default dev lo table 100') },
];

const routingFaults4: Fault[] = [
  { id: 'routing.fwmark-rule.ipv4', breakIt: (r) => r.sh('ip -4 rule del fwmark 0x1/0x1 lookup 100 priority 9000') },
  { id: 'routing.local-route.ipv4', breakIt: (r) => r.sh('ip -4 route del local default dev lo table 100') },
  {
    // mwan3 style: everything that arrives from the clients is routed by a table of its own, first.
    id: 'routing.shadowed.ipv4',
    breakIt: (r) => r.sh('ip -4 route add default via 203.0.113.20 dev to-server table 51820; ip -4 rule add iif to-client lookup 51820 priority 100'),
    cleanup: (r) => r.sh('ip -4 rule del priority 100; ip -4 rule del priority 99; ip -4 route flush table 51820'),
  },
];

const tableFault: Fault = { id: 'rules.table', breakIt: (r) => r.sh('nft delete table inet tproxy_rules') };

const rulesFaults: Fault[] = [
  {
    id: 'rules.foreign-drop',
    breakIt: (r) => r.sh("nft add table inet fw; nft add chain inet fw pre '{ type filter hook prerouting priority -300; }'; nft add rule inet fw pre tcp dport 80 drop"),
  },
  {
    // A QoS or connmark-restore rule after ours that rewrites the whole mark.
    id: 'rules.mark-collision',
    breakIt: (r) => r.sh("nft add table inet qos; nft add chain inet qos pre '{ type filter hook prerouting priority 0; }'; nft add rule inet qos pre meta mark set 0x10"),
  },
];

const hostFaults: Fault[] = [
  {
    // WireGuard's wg-quick turns src_valid_mark on: the reverse-path check then sees our mark.
    id: 'sysctl.src_valid_mark',
    breakIt: (r) => r.sh('sysctl -q -w net.ipv4.conf.all.src_valid_mark=1'),
    cleanup: (r) => r.sh('sysctl -q -w net.ipv4.conf.all.src_valid_mark=0 net.ipv4.conf.to-client.accept_local=0 net.ipv4.conf.to-server.accept_local=0'),
  },
  {
    // Strict rp_filter on the client side: the route back to a client, for a marked packet, is lo.
    id: 'sysctl.rp_filter',
    breakIt: (r) => r.sh('sysctl -q -w net.ipv4.conf.all.src_valid_mark=1 net.ipv4.conf.to-client.accept_local=1 net.ipv4.conf.to-server.accept_local=1 net.ipv4.conf.to-client.rp_filter=1'),
    cleanup: (r) => r.sh('sysctl -q -w net.ipv4.conf.all.src_valid_mark=0 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.to-client.rp_filter=0'),
  },
  {
    id: 'sockets.listener.tcp.ipv4',
    async breakIt(r) {
      r.proxy!.process.child.kill('SIGKILL');
      await r.proxy!.process.exited;
      // No daemon answers: rules status reads what our table records (its listeners too), not the defaults.
      const status = await r.lab.run('router', [process.execPath, BIN, 'rules', 'status'], { check: false });
      assert.match(status.stdout, /^configuration: what table inet tproxy_rules records \(applied by tproxy run pid \d+\), over the defaults \(no daemon answers here\)\nrules: in place /, status.stderr);
      assert.equal(status.exitCode, 0);
    },
  },
  {
    id: 'sockets.transparent.tcp.ipv4',
    async breakIt(r) {
      r.proxy!.process.child.kill('SIGKILL');
      await r.proxy!.process.exited;
      const plain = r.lab.spawn('router', [process.execPath, '-e', "require('net').createServer().listen(8000, () => console.log('ready'))"]);
      await new Promise<void>((resolve, reject) => {
        plain.child.stdout!.once('data', () => resolve());
        void plain.exited.then((code) => reject(new Error(`plain listener exited with ${code}`)));
      });
    },
  },
];

const divertFault: Fault = {
  id: 'rules.divert',
  breakIt: async (r) => r.sh(`nft delete rule inet tproxy_rules prerouting handle ${await r.handle('tproxy_rules', 'prerouting', 'tproxy: divert tcp ipv4')}`),
};

const loopFault: Fault = {
  id: 'rules.upstream-loop',
  noTrafficWhileBroken: true,
  breakIt: async (r) => r.sh(`nft delete rule inet tproxy_rules output handle ${await r.handle('tproxy_rules', 'output', 'tproxy: local: upstream traffic of the proxy')}`),
};

// Three labs at a time: other suites share the machine and its kernel locks.
describe('tproxy doctor on a live host (root)', { concurrency: 3 }, () => {
  it('policy routing (IPv4): the fwmark rule, the local route, a shadowing rule; our table removed', () => withLab(FLAGS, [...routingFaults4, tableFault]));
  it('policy routing (IPv6) and rules: the fwmark rule, the local route; a foreign drop, a mark collision', () => withLab(FLAGS, [...routingFaults6, ...rulesFaults]));
  it('host (daemon started with a file): src_valid_mark, strict rp_filter, no listener, a listener without IP_TRANSPARENT', () => withLab(FLAGS, hostFaults, true));
  it('transparent upstream: the divert rule missing', () => withLab([...FLAGS, '--upstream', 'transparent'], [divertFault]));
  it('local traffic: the proxy\'s upstream mark not excluded (loop)', () => withLab([...FLAGS, '--local'], [loopFault]));
});

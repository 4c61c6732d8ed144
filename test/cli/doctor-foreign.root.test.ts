// Rules tproxy does not own: `tproxy run --no-rules` behind the seed's own commands
//   iptables -t mangle -A PREROUTING -p udp --dport 80 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 8000
//   ip rule add fwmark 1 lookup 100
//   ip route add local 0.0.0.0/0 dev eth1 table 100          (eth1: the router's to-server here)
// written with iptables-nft and with iptables-legacy (x_tables of the router's namespace only).
// Doctor, given no options, asks the daemon, is healthy, and explain agrees with the kernel on a
// delivered and a forwarded packet; then one fault at a time (the fwmark rule, the local route, the
// TPROXY rule on the wrong port): doctor names it with a command of the user's own family as the
// fix, the fault stops real traffic, and running the fix makes doctor pass and traffic flow again.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Finding } from '../../src/core/doctor/finding.js';
import { LAB_ADDRESSES, Lab } from '../../src/lab/topology.js';
import { probe, startEchoServer, startProxy } from '../helpers/lab-flows.js';
import { BIN } from '../helpers/paths.js';

interface Report {
  readonly status: number;
  readonly findings: readonly Finding[];
  readonly configuration: { readonly kind: string; readonly text: string };
}

type Flavour = 'iptables' | 'iptables-legacy';

const SEED = (iptables: Flavour): string =>
  [`${iptables} -t mangle -A PREROUTING -p udp --dport 80 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 8000`, 'ip rule add fwmark 1 lookup 100', 'ip route add local 0.0.0.0/0 dev to-server table 100'].join('; ');

async function doctor(lab: Lab): Promise<Report> {
  const r = await lab.run('router', [process.execPath, BIN, 'doctor', '--json'], { check: false, timeoutMs: 60_000 });
  try {
    return JSON.parse(r.stdout) as Report;
  } catch (error) {
    throw new Error(`doctor printed no report (exit ${r.exitCode}): ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 500)}`, { cause: error });
  }
}

async function explain(lab: Lab, packet: string): Promise<{ outcome: { kind: string }; socket?: { local: string }; source: string }> {
  const r = await lab.run('router', [process.execPath, BIN, 'explain', '--json', ...packet.split(' ')]);
  return JSON.parse(r.stdout) as { outcome: { kind: string }; socket?: { local: string }; source: string };
}

/** A UDP exchange with the server's port 80: through the proxy (the server sees the router) or not at all. */
async function proxied(lab: Lab, timeoutMs = 3000): Promise<boolean> {
  const r = await probe(lab, 'client', 'udp', LAB_ADDRESSES.server.ipv4, 'seed', timeoutMs);
  return r.ok && r.reply?.seen.address === LAB_ADDRESSES.routerServerSide.ipv4;
}

function failing(report: Report): Finding[] {
  return report.findings.filter((f) => f.severity === 'fail');
}

function healthy(report: Report, what: string): void {
  assert.deepEqual(failing(report).map((f) => [f.id, f.seen, f.fix]), [], `${what}: no failure`);
  assert.equal(report.status, 0);
}

interface Fault {
  readonly id: string;
  readonly name: string;
  readonly breakIt: (iptables: Flavour) => string;
  /** The fix must be this command of the user's own family. */
  readonly fix: (iptables: Flavour) => string;
}

const FAULTS: readonly Fault[] = [
  { id: 'routing.fwmark-rule.ipv4', name: 'the fwmark rule missing', breakIt: () => 'ip rule del fwmark 1 lookup 100', fix: () => 'ip -4 rule add fwmark 0x1/0x1 lookup 100' },
  { id: 'routing.local-route.ipv4', name: 'the local route missing', breakIt: () => 'ip route del local 0.0.0.0/0 dev to-server table 100', fix: () => 'ip -4 route add local default dev lo table 100' },
  {
    id: 'probe.udp.ipv4.80',
    name: 'the TPROXY rule on the wrong port',
    breakIt: (iptables) => `${iptables} -t mangle -R PREROUTING 1 -p udp --dport 80 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 8001`,
    fix: (iptables) => `${iptables} -t mangle -R PREROUTING 1 -p udp -m udp --dport 80 -j TPROXY --on-port 8000 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1`,
  },
];

async function seedRules(iptables: Flavour): Promise<void> {
  const lab = await Lab.create();
  const dir = mkdtempSync(join(tmpdir(), 'tpx-seed-'));
  const legacyBefore = readFileSync('/proc/net/ip_tables_names', 'utf8');
  try {
    await startEchoServer(lab);
    await startProxy(lab, ['--no-rules', '--intercept', 'udp:80', '--family', '4', '--workers', '0', '--admin-socket', join(dir, 'admin.sock')]);
    await lab.run('router', ['sh', '-ec', SEED(iptables)]);
    assert.equal(await proxied(lab), true, 'the seed\'s rules send UDP through the proxy');

    const report = await doctor(lab);
    assert.equal(report.configuration.kind, 'daemon', report.configuration.text);
    healthy(report, 'the seed\'s rules');
    assert.ok(report.findings.some((f) => f.id === 'probe.udp.ipv4.80' && f.severity === 'pass'));
    assert.ok(report.findings.some((f) => f.id === 'rules.table' && f.severity === 'pass' && /not tproxy's: ip mangle(\[legacy\])? PREROUTING/.test(f.seen)), JSON.stringify(report.findings.filter((f) => f.id === 'rules.table')));

    // explain and the kernel agree: UDP to port 80 is delivered to the proxy, TCP to port 80 (not
    // intercepted by these rules) is forwarded, and the server sees the client itself.
    const delivered = await explain(lab, `udp ${LAB_ADDRESSES.client.ipv4}:40000 -> ${LAB_ADDRESSES.server.ipv4}:80 iif to-client`);
    assert.equal(delivered.outcome.kind, 'delivered', JSON.stringify(delivered));
    assert.match(delivered.socket?.local ?? '', /:8000$/);
    assert.match(delivered.source, iptables === 'iptables' ? /^state: this host; rules read from iptables-nft \(ip mangle\)$/ : /^state: this host; rules read from iptables-legacy \(ip mangle\)$/);
    const forwarded = await explain(lab, `tcp ${LAB_ADDRESSES.client.ipv4}:40000 -> ${LAB_ADDRESSES.server.ipv4}:80 iif to-client syn`);
    assert.equal(forwarded.outcome.kind, 'forwarded', JSON.stringify(forwarded));
    const tcp = await probe(lab, 'client', 'tcp', LAB_ADDRESSES.server.ipv4, 'direct');
    assert.equal(tcp.reply?.seen.address, LAB_ADDRESSES.client.ipv4, 'the kernel forwarded the TCP flow: the server saw the client');

    for (const fault of FAULTS) {
      await lab.run('router', ['sh', '-ec', fault.breakIt(iptables)]);
      const broken = await doctor(lab);
      const found = failing(broken).find((f) => f.id === fault.id);
      assert.ok(found, `${fault.name}: doctor fails with ${fault.id}; it reported ${JSON.stringify(failing(broken).map((f) => [f.id, f.seen]))}`);
      assert.equal(found.fix, fault.fix(iptables), `${fault.name}: the fix is the user's own kind of command`);
      for (const f of failing(broken)) assert.doesNotMatch(f.fix ?? '', /tproxy rules apply/, `${f.id}: never tproxy rules apply for rules tproxy does not own`);
      assert.equal(await proxied(lab, 1500), false, `${fault.name}: the fault really stops traffic`);
      await lab.run('router', ['sh', '-ec', found.fix ?? '']);
      healthy(await doctor(lab), `${fault.name}, after ${found.fix ?? ''}`);
      assert.equal(await proxied(lab), true, `${fault.name}: traffic flows through the proxy after ${found.fix ?? ''}`);
    }
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(readFileSync('/proc/net/ip_tables_names', 'utf8'), legacyBefore, 'the host\'s legacy x_tables are untouched');
  }
}

describe('tproxy doctor and explain with rules tproxy does not own (root)', { concurrency: 2 }, () => {
  it('the seed\'s iptables commands with iptables-nft', () => seedRules('iptables'));
  it('the seed\'s iptables commands with iptables-legacy', () => seedRules('iptables-legacy'));
});

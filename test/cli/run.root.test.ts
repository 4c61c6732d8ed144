// `tproxy run` managing its own rules, and `tproxy rules`, inside a lab router namespace.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES, Lab } from '../../src/lab/topology.js';
import { probe, startEchoServer, startProxy } from '../helpers/lab-flows.js';
import { BIN, isAlive } from '../helpers/paths.js';
import { unprivilegedCopy } from '../helpers/unprivileged.js';

describe('tproxy run and tproxy rules in a namespace (root)', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create();
    await startEchoServer(lab);
  });
  after(() => lab.destroy());

  const ruleArgs = ['--intercept', 'tcp:80', '--intercept', 'udp:80', '--listen', '8100', '--table', 'tproxy_test', '--route-table', '123', '--rule-priority', '9123'];
  const rules = (...argv: string[]): ReturnType<Lab['run']> => lab.run('router', [process.execPath, BIN, 'rules', ...argv, ...ruleArgs], { check: false });
  const nothingLeft = async (): Promise<void> => {
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '', 'no table left');
    for (const family of ['-4', '-6']) assert.doesNotMatch((await lab.run('router', ['ip', family, 'rule'])).stdout, /9123/, `no ip ${family} rule left`);
  };

  it('rules apply is idempotent, status reports it, cleanup removes exactly it', async () => {
    assert.match((await rules('apply')).stdout, /^applied \(backend nft\): 2 policy route\(s\), fail mode drop$/m);
    assert.match((await rules('apply')).stdout, /^already in place \(backend nft\): nothing changed$/m);
    const ipRules = JSON.parse((await lab.run('router', ['ip', '-j', '-4', 'rule', 'show'])).stdout) as { priority: number }[];
    assert.equal(ipRules.filter((r) => r.priority === 9123).length, 1, 'one fwmark rule after two applies');
    const status = await rules('status');
    assert.equal(status.exitCode, 0);
    assert.match(status.stdout, /^rules: in place \(backend nft\)$/m);
    assert.match(status.stdout, /^ {2}in place {2}prerouting: tproxy: intercept tcp ipv4 \(0 packets, 0 bytes\)$/m);
    assert.match(status.stdout, /^ {2}in place {2}ip -6 rule fwmark 0x00000001\/0x00000001 lookup 123 priority 9123$/m);
    const json = JSON.parse((await rules('status', '--json')).stdout) as { inPlace: boolean; pieces: unknown[] };
    assert.equal(json.inPlace, true);
    assert.match((await rules('cleanup')).stdout, /^removed \(backend nft\): our rules, 2 ip rule\(s\), 2 route\(s\)$/m);
    const absent = await rules('status');
    assert.equal(absent.exitCode, 1, 'status exits 1 when rules are absent');
    assert.match(absent.stdout, /^rules: absent \(backend nft\)$/m);
    assert.match((await rules('cleanup')).stdout, /no rules of ours were there, 0 ip rule\(s\), 0 route\(s\)/);
    await nothingLeft();
  });

  it('tproxy run applies its rules, relays, and removes them on SIGTERM', async () => {
    const { process: proxy, lines } = await startProxy(lab, ruleArgs);
    assert.ok(lines.find((l) => l.type === 'rules.applied'));
    for (const [transport, host] of [['tcp', LAB_ADDRESSES.server.ipv6], ['udp', LAB_ADDRESSES.server.ipv4]] as const) {
      const line = await probe(lab, 'client', transport, host, `via run ${transport}`);
      assert.equal(line.ok, true);
      assert.equal(line.reply?.seen.address, host.includes(':') ? LAB_ADDRESSES.routerServerSide.ipv6 : LAB_ADDRESSES.routerServerSide.ipv4, 'direct mode: the server sees the router');
      await lines.waitFor((l) => (l.type === 'tcp.accept' || l.type === 'udp.session.open') && l.originalDestination?.address === host, 5000, `the proxy reporting the ${transport} flow`);
    }
    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    await lines.closed();
    assert.ok(lines.find((l) => l.type === 'rules.removed'));
    await nothingLeft();
  });

  it('after a SIGKILL the rules stay (fail closed); the next start replaces them, cleanup removes them', async () => {
    const first = await startProxy(lab, ruleArgs);
    const pid = first.process.child.pid ?? -1;
    first.process.child.kill('SIGKILL');
    await first.process.exited;
    assert.equal(isAlive(pid), false);
    const stale = await rules('status');
    assert.match(stale.stdout, new RegExp(`^rules: in place \\(backend nft, owner tproxy run pid ${pid} \\(not running: stale, removed by the next start or tproxy rules cleanup\\)\\)$`, 'm'));
    const dropped = await probe(lab, 'client', 'udp', LAB_ADDRESSES.server.ipv4, 'while the proxy is dead', 500);
    assert.equal(dropped.ok, false, 'fail-closed: intercepted traffic does not go around a dead proxy');

    const second = await startProxy(lab, ruleArgs);
    const applied = second.lines.find((l) => l.type === 'rules.applied');
    assert.deepEqual(applied?.replaced, { owner: pid, stale: true });
    assert.equal((await probe(lab, 'client', 'tcp', LAB_ADDRESSES.server.ipv4, 'after restart')).ok, true);
    second.process.child.kill('SIGKILL');
    await second.process.exited;

    const cleanup = await rules('cleanup');
    assert.match(cleanup.stdout, /^removed \(backend nft\): our rules, 2 ip rule\(s\), 2 route\(s\)$/m);
    assert.equal(cleanup.stderr, '', 'no warning: the owner was not running');
    await nothingLeft();
  });

  it('refuses a second tproxy run on the same rules while the first is running', async () => {
    const first = await startProxy(lab, ruleArgs);
    const second = await lab.run('router', [process.execPath, BIN, 'run', ...ruleArgs.map((a) => (a === '8100' ? '8101' : a))], { check: false });
    assert.equal(second.exitCode, 1);
    assert.match(second.stderr, new RegExp(`belong to a running tproxy \\(pid ${first.process.child.pid ?? -1}\\).*\\[ERR_CONFLICT\\]`));
    first.process.child.kill('SIGTERM');
    assert.equal(await first.process.exited, 0);
    await nothingLeft();
  });

  it('says plainly that rules need privileges when run without them', async () => {
    const copy = unprivilegedCopy();
    const result = await lab.run('router', ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, copy.bin, 'rules', 'apply', ...ruleArgs], { check: false });
    copy.remove();
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /nft needs CAP_NET_ADMIN: run as root \(or grant the capability\) \[ERR_PRIVILEGE\]/);
  });

  it('listens on a given address and redirects there (--listen-address)', async () => {
    const { process: proxy, lines } = await startProxy(lab, [...ruleArgs, '--listen-address', '127.0.0.1', '--listen-address', '::1']);
    const listening = lines.items.filter((l) => l.type === 'listening').map((l) => (l as unknown as { local: { address: string } }).local.address);
    assert.deepEqual([...new Set(listening)].sort(), ['127.0.0.1', '::1']);
    for (const [transport, host] of [['tcp', LAB_ADDRESSES.server.ipv4], ['udp', LAB_ADDRESSES.server.ipv6]] as const) {
      const line = await probe(lab, 'client', transport, host, `via loopback listener ${transport}`);
      assert.equal(line.ok, true, `${transport} ${host}`);
      await lines.waitFor((l) => (l.type === 'tcp.accept' || l.type === 'udp.session.open') && l.originalDestination?.address === host, 5000, `the proxy reporting the ${transport} flow`);
    }
    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    await nothingLeft();
  });
});

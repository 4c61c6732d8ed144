// `tproxy run` managing its own rules, and `tproxy rules`, inside a lab router namespace.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../src/lab/json-lines.js';
import { LAB_ADDRESSES, Lab } from '../../src/lab/topology.js';
import { AGENT, BIN } from '../helpers/paths.js';

describe('tproxy run and tproxy rules in a namespace (root)', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create();
    const server = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', '80']);
    await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'echo server ready');
  });
  after(() => lab.destroy());

  const ruleArgs = ['--intercept', 'tcp:80', '--intercept', 'udp:80', '--listen', '8100', '--table', 'tproxy_test', '--route-table', '123', '--rule-priority', '9123'];

  it('rules apply is idempotent, status reports it, cleanup removes exactly it', async () => {
    await lab.run('router', [process.execPath, BIN, 'rules', 'apply', ...ruleArgs]);
    await lab.run('router', [process.execPath, BIN, 'rules', 'apply', ...ruleArgs]);
    const rules = JSON.parse((await lab.run('router', ['ip', '-j', '-4', 'rule', 'show'])).stdout) as { priority: number }[];
    assert.equal(rules.filter((r) => r.priority === 9123).length, 1, 'one fwmark rule after two applies');
    const status = await lab.run('router', [process.execPath, BIN, 'rules', 'status', ...ruleArgs]);
    assert.match(status.stdout, /table inet tproxy_test: present/);
    assert.match(status.stdout, /tproxy: intercept tcp ipv4: 0 packets/);
    assert.match(status.stdout, /ipv6: fwmark rule present, local route present/);
    const cleanup = await lab.run('router', [process.execPath, BIN, 'rules', 'cleanup', ...ruleArgs]);
    assert.match(cleanup.stdout, /removed: table yes, 2 ip rule\(s\), 2 route\(s\)/);
    const after = await lab.run('router', [process.execPath, BIN, 'rules', 'status', ...ruleArgs], { check: false });
    assert.equal(after.exitCode, 1, 'status exits 1 when rules are absent');
    assert.match(after.stdout, /table inet tproxy_test: absent/);
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '');
  });

  it('tproxy run applies its rules, relays, and removes them on SIGTERM', async () => {
    const proxy = lab.spawn('router', [process.execPath, BIN, 'run', ...ruleArgs, '--log-level', 'debug', '--log-format', 'json']);
    const lines = new JsonLines<{ type: string; originalDestination?: { address: string; port: number } }>(proxy.child.stderr!);
    await lines.waitFor((l) => l.type === 'ready', 15_000, 'tproxy run ready');
    assert.ok(lines.find((l) => l.type === 'rules.applied'));
    for (const [transport, host] of [['tcp', LAB_ADDRESSES.server.ipv6], ['udp', LAB_ADDRESSES.server.ipv4]] as const) {
      const out = await lab.run('client', [process.execPath, AGENT, 'probe', transport, host, '80', `via run ${transport}`]);
      const line = JSON.parse(out.stdout) as { ok: boolean; reply: { seen: { address: string } } };
      assert.equal(line.ok, true);
      assert.equal(line.reply.seen.address, host.includes(':') ? LAB_ADDRESSES.routerServerSide.ipv6 : LAB_ADDRESSES.routerServerSide.ipv4, 'direct mode: the server sees the router');
      await lines.waitFor((l) => (l.type === 'tcp.accept' || l.type === 'udp.session.open') && l.originalDestination?.address === host, 5000, `the proxy reporting the ${transport} flow`);
    }
    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    await lines.closed();
    assert.ok(lines.find((l) => l.type === 'rules.removed'));
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '', 'table gone');
    const rules = JSON.parse((await lab.run('router', ['ip', '-j', '-6', 'rule', 'show'])).stdout) as { priority: number }[];
    assert.ok(!rules.some((r) => r.priority === 9123), 'ip -6 rule gone');
  });
});

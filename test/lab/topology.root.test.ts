// The namespace lab itself: topology, forwarding without a proxy, cleanup, leftovers of dead runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { JsonLines } from '../../src/lab/json-lines.js';
import { LAB_ADDRESSES, Lab, labPrefix, namespacesWithPrefix, sweepLeftovers } from '../../src/lab/topology.js';
import { ProcessRunner } from '../../src/sys/exec.js';
import { AGENT, isAlive } from '../helpers/paths.js';

describe('namespace lab (root)', () => {
  let lab: Lab | undefined;
  after(async () => {
    await lab?.destroy();
  });

  it('builds client <-> router <-> server and forwards IPv4 and IPv6 without a proxy', async () => {
    lab = await Lab.create();
    assert.match(lab.prefix, /^tpx\d+x[0-9a-f]{6}$/);
    assert.deepEqual((await namespacesWithPrefix(lab.prefix)).sort(), ['client', 'router', 'server'].map((h) => `${lab?.prefix}-${h}`));
    const addrs = JSON.parse((await lab.run('client', ['ip', '-j', 'addr', 'show', 'dev', 'eth0'])).stdout) as { addr_info: { local: string }[] }[];
    assert.deepEqual(addrs[0]?.addr_info.map((a) => a.local).filter((a) => !a.startsWith('fe80')).sort(), [LAB_ADDRESSES.client.ipv4, LAB_ADDRESSES.client.ipv6].sort());
    assert.equal((await lab.run('router', ['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim(), '1');

    const server = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', '80']);
    await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'echo server ready');
    for (const [transport, host, client] of [
      ['tcp', LAB_ADDRESSES.server.ipv4, LAB_ADDRESSES.client.ipv4],
      ['udp', LAB_ADDRESSES.server.ipv6, LAB_ADDRESSES.client.ipv6],
    ] as const) {
      const out = await lab.run('client', [process.execPath, AGENT, 'probe', transport, host, '80', `plain ${transport}`]);
      const line = JSON.parse(out.stdout) as { ok: boolean; reply: { seen: { address: string }; message: string } };
      assert.equal(line.ok, true);
      assert.equal(line.reply.message, `plain ${transport}`);
      assert.equal(line.reply.seen.address, client, 'routed, not proxied: the server sees the client');
    }
    const pid = server.child.pid ?? -1;
    const prefix = lab.prefix;
    await lab.destroy();
    assert.deepEqual(await namespacesWithPrefix(prefix), []);
    assert.equal(isAlive(pid), false, 'processes started in the lab are stopped');
  });

  it('removes namespaces left by a run whose process died, and keeps those of live runs', async () => {
    const dead = spawnSync('true');
    const deadPid = dead.pid ?? 999_999;
    const runner = new ProcessRunner();
    const deadName = `${labPrefix(deadPid)}-router`;
    const liveName = `${labPrefix(process.pid)}-router`;
    await runner.run(['ip', 'netns', 'add', deadName]);
    await runner.run(['ip', 'netns', 'add', liveName]);
    try {
      const removed = await sweepLeftovers(runner);
      assert.ok(removed.includes(deadName));
      assert.ok(!removed.includes(liveName));
      const list = (await runner.run(['ip', 'netns', 'list'])).stdout;
      assert.ok(!list.includes(deadName));
      assert.ok(list.includes(liveName));
    } finally {
      await runner.run(['ip', 'netns', 'delete', deadName], { check: false });
      await runner.run(['ip', 'netns', 'delete', liveName], { check: false });
    }
  });
});

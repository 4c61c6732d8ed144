// `tproxy run` at a low descriptor limit under a UDP flood of new flows that never hear back: the
// daemon lives, new flows keep working, its nft children still run, every descriptor comes back
// after the idle timeout, and SIGTERM still removes every rule.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../src/lab/json-lines.js';
import { LAB_ADDRESSES as A, Lab, untilReady } from '../../src/lab/topology.js';
import { AGENT, BIN, isAlive } from '../helpers/paths.js';
import { startEchoServer } from '../helpers/udp-lab.js';

const UDP_LOAD = fileURLToPath(new URL('../../src/lab/udp-load.js', import.meta.url));

type LogLine = { type: string; [key: string]: unknown };
interface Flows {
  ok: boolean;
  replies: number;
  problems: unknown[];
}

const openDescriptors = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

describe('tproxy run out of descriptors (root)', () => {
  let lab: Lab;
  const socket = join(tmpdir(), `tproxy-exhaustion-${process.pid}.sock`);
  before(async () => {
    lab = await Lab.create();
    // Port 80 echoes; port 5353 swallows (counts, never answers): sessions to it stay open until idle.
    await startEchoServer(lab);
    const server = lab.spawn('server', [process.execPath, UDP_LOAD, 'serve', '--sink', '5353']);
    await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'udp-load serve ready');
  });
  after(() => lab.destroy());

  it('survives a flood of 3,000 UDP flows at a limit of 256 descriptors, and gives every descriptor back', async () => {
    const args = ['--intercept', 'udp:80,5353', '--listen', '8600', '--family', '4', '--table', 'tproxy_exhaust', '--route-table', '160', '--rule-priority', '9160', '--udp-idle-timeout-ms', '3000', '--admin-socket', socket];
    const proxy = lab.spawn('router', ['prlimit', '--nofile=256:256', process.execPath, BIN, 'run', ...args, '--log-format', 'json']);
    const logs = new JsonLines<LogLine>(proxy.child.stderr!);
    await untilReady(proxy, logs.waitFor((l) => l.type === 'ready', 60_000, 'tproxy run ready'));
    const pid = proxy.child.pid ?? 0;
    const flows = (count: number): Promise<Flows> => lab.run('client', [process.execPath, AGENT, 'udp-flows', A.server.ipv4, '80', '--count', `${count}`], { timeoutMs: 30_000, check: false }).then((r) => JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Flows);
    const status = async (): Promise<{ listeners: { counters: { udp: { sessionsActive: number; sessionsCreated: number; sessionsEvictedForDescriptors: number } } }[]; rules: { managed: boolean; inPlace?: boolean } }> =>
      JSON.parse((await lab.run('router', [process.execPath, BIN, 'status', '--socket', socket, '--json'], { timeoutMs: 20_000 })).stdout) as never;

    // Warm up (the runtime opens what it keeps), then the baseline.
    const warm = await flows(3);
    assert.equal(warm.ok, true, JSON.stringify(warm));
    await new Promise((r) => setTimeout(r, 4500));
    const baseline = openDescriptors(pid);

    const sprayed = await lab.run('client', [process.execPath, UDP_LOAD, 'spray', A.server.ipv4, '5353', '--sources', '3000'], { timeoutMs: 30_000 });
    assert.equal((JSON.parse(sprayed.stdout.trim()) as { sent: number }).sent, 3000);
    assert.ok(isAlive(pid), 'the daemon lives');
    const during = openDescriptors(pid);
    assert.ok(during <= 256, `within its limit: ${during}`);

    // The spray's datagrams that fit wait in the listener's receive buffer: let the loop work through
    // them first. On a loaded machine the buffer can still be full when the fresh flows send, and
    // udp-flows sends each datagram once (a real client would retry), so they would be dropped by
    // the kernel before the proxy ever saw them. Bounded: 30 polls of 500 ms.
    let created = -1;
    for (let i = 0; i < 30; i++) {
      const now = (await status()).listeners[0]?.counters.udp.sessionsCreated ?? 0;
      if (now === created) break;
      created = now;
      await new Promise((r) => setTimeout(r, 500));
    }

    // New flows still work, and the daemon still runs its nft children (status reads the rules).
    const fresh = await flows(5);
    assert.deepEqual(fresh.problems, []);
    assert.equal(fresh.replies, 5);
    const busy = await status();
    assert.equal(busy.rules.managed, true);
    assert.equal(busy.rules.inPlace, true, 'nft ran and found every rule in place');
    const udp = busy.listeners[0]?.counters.udp;
    assert.ok((udp?.sessionsEvictedForDescriptors ?? 0) > 1000, `the least recently used sessions made room: ${JSON.stringify(udp)}`);
    assert.equal(logs.find((l) => l.type === 'error' && /udp relay loop stopped/.test(String(l.message))), undefined, 'the UDP loop never stopped');

    // Every session ends at the idle timeout, and its descriptors come back.
    let now = openDescriptors(pid);
    for (let i = 0; i < 40 && now > baseline; i++) {
      await new Promise((r) => setTimeout(r, 250));
      now = openDescriptors(pid);
    }
    assert.ok(now <= baseline, `descriptors back to the baseline: ${now} (baseline ${baseline}, ${during} during the flood)`);
    assert.equal((await status()).listeners[0]?.counters.udp.sessionsActive, 0);

    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    await logs.closed();
    assert.ok(logs.find((l) => l.type === 'rules.removed'));
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '', 'no table left');
    assert.doesNotMatch((await lab.run('router', ['ip', '-4', 'rule'])).stdout, /9160/, 'no ip rule left');
  });
});

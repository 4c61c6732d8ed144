// The splice engine's shared pipes under contention: a budget of two pipes for 24 flows that all
// move 2 MiB each way at once. A direction that finds no pipe waits in line for one (never fails
// its flow), so every transfer completes intact, and the process never holds more than the budget.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { TcpCounters } from '../../../../src/dataplane/tcp/counters.js';
import { JsonLines } from '../../../../src/lab/json-lines.js';
import { LAB_ADDRESSES, Lab } from '../../../../src/lab/topology.js';
import { BIN, TCP_PEER } from '../../../helpers/paths.js';

const HOST = new URL('../../../helpers/splice-relay-host.js', import.meta.url).pathname;
const PORT = 8310;
const MAX_PIPES = 2;
const FLOWS = 24;
const BYTES = 2 * 1024 * 1024;
const RULES = ['--intercept', 'tcp:81', '--listen', `${PORT}`, '--family', '4', '--table', 'tproxy_pipewait', '--route-table', '131', '--rule-priority', '9131'];

/** Pipes `pid` has open now (its descriptors that are pipe ends, two per pipe). */
function pipesOf(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('pipe:')) n++;
    } catch {
      // closed between the listing and the read
    }
  }
  return n / 2;
}

describe('TCP splice engine, a tiny shared pipe budget (root)', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create();
    const server = lab.spawn('server', [process.execPath, TCP_PEER, 'server', '--port', '81']);
    await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'tcp test server ready');
    await lab.run('router', [process.execPath, BIN, 'rules', 'apply', ...RULES]);
  });
  after(() => lab.destroy());

  it(`relays ${FLOWS} concurrent 2 MiB echo transfers through ${MAX_PIPES} pipes: every byte intact, waiting directions never fail`, async () => {
    const config = {
      families: [4],
      port: PORT,
      routing: { listener: 'main', defaultOutbound: { name: 'direct', kind: 'direct' }, outbounds: [], lists: [], routes: [] },
      sniffTimeoutMs: 1000,
      upstreamMark: 2,
      connectTimeoutMs: 10_000,
      idleTimeoutMs: 60_000,
      keepAliveMs: 0,
      backlog: 512,
      reusePort: false,
      maxConnections: 1000,
      flowEvents: false,
      pipeBytes: 64 * 1024,
      maxPipes: MAX_PIPES,
    };
    const relay = lab.spawn('router', [process.execPath, HOST, JSON.stringify(config)]);
    const events = new JsonLines<{ type: string; counters?: TcpCounters }>(relay.child.stdout!);
    await events.waitFor((l) => l.type === 'ready', 20_000, 'relay ready');
    const pid = relay.child.pid ?? -1;
    // The runtime's own pipes (stdio, the worker thread's channels) are there before any flow.
    const base = pipesOf(pid);
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, pipesOf(pid) - base)), 5);
    let out;
    try {
      out = await lab.run('client', [process.execPath, TCP_PEER, 'client', 'bulkmany', LAB_ADDRESSES.server.ipv4, '81', `${FLOWS}`, `${BYTES}`], { timeoutMs: 120_000 });
    } finally {
      clearInterval(sampler);
    }
    const result = JSON.parse(out.stdout.trim().split('\n').pop() ?? '{}') as { ok: number; failures: string[] };
    assert.deepEqual(result.failures, []);
    assert.equal(result.ok, FLOWS);
    assert.ok(most >= 1, 'pipes were used (the sampler saw them)');
    assert.ok(most <= MAX_PIPES, `${most} pipes open at once: never more than the budget of ${MAX_PIPES}`);
    relay.child.stdin?.write('stop\n');
    const stopped = await events.waitFor((l) => l.type === 'stopped', 20_000, 'relay stopped');
    const tcp = stopped.counters!;
    assert.equal(tcp.accepted, FLOWS);
    assert.deepEqual(tcp.closed, { done: FLOWS }, 'every flow ended with its FINs, none for want of a pipe');
    assert.deepEqual(tcp.connectErrors, {});
    assert.ok(tcp.pipeWaits > 0, `directions waited for a pipe, and were counted: ${tcp.pipeWaits}`);
    assert.equal(tcp.pipeWaiting, 0, 'none waits once every flow ended');
    assert.equal(tcp.bytesFromClient, FLOWS * (BYTES + 'ECHO\n'.length));
    assert.equal(tcp.bytesFromServer, FLOWS * BYTES);
    await relay.exited;
  });
});

// The mmproxy splice engine's shared pipes and descriptor budget, on one listener whose process runs
// under a small RLIMIT_NOFILE (prlimit) and makes its descriptor budget from it as the daemon does.
// The budget cannot give the engine thread the 128 descriptors of its 64 shared pipes, so the thread
// shares 2 pipes (one flow's pair), taken from the budget at start; every connection takes 2 more.
// - Bulk flows beyond the one pair: directions wait in line for it (counted), every byte arrives
//   intact, none waits at the end, and the process never holds more than the 2 pipes.
// - A flow that ends while waiting (its backend resets it) leaves the line: counters and descriptors
//   come back to where they were, and the pair still serves the next flow.
// - Connections up to what the budget holds (2 each past the reserved pipes), the next ones reset
//   and counted (descriptor-limit, one mmproxy.reject each), no EMFILE; closing some makes room again.
// - Out of descriptors anyway (no budget here: its slack is what the engine threads' own descriptors
//   use; the limit lowered under the running process), accepting pauses: EMFILE reported once per
//   retry (250 ms), not on every loop turn, and the connection waiting in the backlog is served
//   once the limit is raised. Splice only: the uring engine's accepts are queued ahead, each with the
//   limit in force when it was queued (io_uring reads RLIMIT_NOFILE at prep), so lowering the limit
//   under it does not make its next accept fail (its backend socket does: a connect error).
// The backend is the tcp-peer server on loopback; the header names 127.0.0.2 as the client, a local
// address, so the backend's replies come back without any rule.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { MmproxyCounters } from '../../../src/dataplane/mmproxy/counters.js';
import type { MmproxyTcpConfig } from '../../../src/dataplane/mmproxy/tcp-relay.js';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { Lab } from '../../../src/lab/topology.js';
import type { DescriptorBudgetSnapshot } from '../../../src/sys/descriptor-budget.js';
import { HELD_CONNECTIONS, MMPROXY_AGENT, TCP_PEER } from '../../helpers/paths.js';
import { until } from '../../helpers/until.js';

/** The agent's descriptor limit: far below what 64 shared pipes need (128) past what is open and reserved. */
const NOFILE = 200;
/** The 2 pipes a thread shares when the budget cannot give it 64 (splice-engine.ts MIN_SHARED_PIPES). */
const MIN_PIPES = 2;
const LISTEN = { address: '127.0.0.1', port: 8443 };
const CLIENT = '127.0.0.2';
const FLOWS = 8;
/** Past what loopback's send buffers take (they grow to 4 MiB): sinks fill, and directions need the pipes. */
const BYTES = 8 * 1024 * 1024;

type Counters = MmproxyCounters & { seq: number; budget: DescriptorBudgetSnapshot; available: number };
type Line = { type: string; seq?: number; reason?: string; code?: string };

/** Descriptors of `pid` whose link starts with `kind` (`pipe:`, `socket:`). */
function descriptorsOf(pid: number, kind: string): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(kind)) n++;
    } catch {
      // closed between the listing and the read
    }
  }
  return n;
}

function mmproxyConfig(port: number): MmproxyTcpConfig {
  return {
    name: 'lb',
    listen: [{ address: LISTEN.address, port }],
    allowedSources: ['127.0.0.0/8'],
    backend4: { address: '127.0.0.1', port: 8080 },
    headerTimeoutMs: 5000,
    maxHeaderBytes: 512,
    upstreamMark: 0x2,
    connectTimeoutMs: 5000,
    idleTimeoutMs: 60_000,
  };
}

async function startBackend(lab: Lab): Promise<void> {
  const backend = lab.spawn('router', [process.execPath, TCP_PEER, 'server', '--port', '8080']);
  await new JsonLines<{ event: string }>(backend.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'the backend ready');
}

describe('mmproxy splice engine: shared pipes and the descriptor budget under a small RLIMIT_NOFILE (root)', () => {
  let lab: Lab;
  let agent: ReturnType<Lab['spawn']>;
  let lines: JsonLines<Line>;
  let pid: number;
  /** Pipe ends the runtime holds (stdio, the worker's channels): the pool makes its pipes only when flows need them. */
  let runtimePipeEnds: number;
  let seq = 0;
  const counters = async (): Promise<Counters> => {
    const n = ++seq;
    agent.child.stdin!.write(`counters ${n}\n`);
    return (await lines.waitFor((l) => l.type === 'counters' && l.seq === n, 5000, `counters ${n}`)) as unknown as Counters;
  };
  /** Runs a tcp-peer client in the router namespace; its last JSON line. */
  const client = async (args: string[]): Promise<Record<string, unknown>> => {
    const out = await lab.run('router', [process.execPath, TCP_PEER, 'client', ...args], { timeoutMs: 120_000 });
    return JSON.parse(out.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
  };

  before(async () => {
    lab = await Lab.create();
    try {
      await startBackend(lab);
      agent = lab.spawn('router', ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, process.execPath, MMPROXY_AGENT, JSON.stringify(mmproxyConfig(LISTEN.port)), 'splice', JSON.stringify({ threads: 1, budget: true })]);
      lines = new JsonLines<Line>(agent.child.stdout!);
      await lines.waitFor((l) => l.type === 'ready', 15_000, 'the mmproxy listener ready');
      pid = agent.child.pid ?? -1;
      runtimePipeEnds = descriptorsOf(pid, 'pipe:');
    } catch (error) {
      await lab.destroy();
      throw error;
    }
  });
  after(async () => {
    agent?.child.stdin?.end();
    await lab.destroy();
  });

  it('reserves one pair of shared pipes from a budget too small for 64', async () => {
    const c = await until(counters, (x) => x.budget.byConsumer.mmproxy.inUse > 0, 5000, 'the thread took its pipes');
    assert.equal(c.budget.byConsumer.mmproxy.inUse, 2 * MIN_PIPES, 'the thread took 4 descriptors (2 pipes), not 128');
    assert.equal(c.available, c.budget.capacity - c.budget.childReserve - c.budget.stopReserve - 2 * MIN_PIPES);
    assert.ok(c.available < 2 * 64, `the budget could not have held 64 pipes: ${c.available} left`);
  });

  it(`relays ${FLOWS} concurrent 8 MiB echo transfers through one pair of pipes: every byte intact, waits counted, none left waiting`, async () => {
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, descriptorsOf(pid, 'pipe:') - runtimePipeEnds)), 5);
    let result;
    try {
      result = await client(['bulkmany', LISTEN.address, `${LISTEN.port}`, `${FLOWS}`, `${BYTES}`, '--proxy', `${CLIENT}:21000`]);
    } finally {
      clearInterval(sampler);
    }
    assert.deepEqual(result.failures, []);
    assert.equal(result.ok, FLOWS);
    assert.ok(most >= 2, 'pipes were used (the sampler saw them)');
    // The pool's pipes come and go within its 2 (kept once made).
    assert.ok(most <= 2 * MIN_PIPES, `${most / 2} pipes open at once: never more than the ${MIN_PIPES} shared`);
    const c = await until(counters, (x) => x.active === 0 && (x.closed.done ?? 0) === FLOWS, 10_000, 'every flow ended');
    assert.deepEqual(c.closed, { done: FLOWS }, 'every flow ended with its FINs, none for want of a pipe');
    assert.deepEqual(c.connectErrors, {});
    assert.ok(c.pipeWaits > 0, `directions waited for a pipe, and were counted: ${c.pipeWaits}`);
    assert.equal(c.pipeWaiting, 0, 'none waits once every flow ended');
    assert.equal(c.bytesFromClient, FLOWS * (BYTES + 'ECHO\n'.length));
    assert.equal(c.bytesFromBackend, FLOWS * BYTES);
  });

  it('a flow that ends while waiting for a pipe leaves the line: counters and descriptors back, the pair serves the next flow', async () => {
    const start = await counters();
    const sockets = descriptorsOf(pid, 'socket:');
    // A holds the pair: its backend reads nothing, so its bytes stay in the pipe (reset after 9 s).
    const holder = lab.spawn('router', [process.execPath, TCP_PEER, 'client', 'stall', LISTEN.address, `${LISTEN.port}`, '9000', '--proxy', `${CLIENT}:22000`]);
    const holderEnd = new JsonLines<{ how: string }>(holder.child.stdout!);
    await until(counters, (x) => x.active === 1, 5000, 'the holder relayed');
    await new Promise((r) => setTimeout(r, 1000));
    // B's backend reads nothing either: its bytes back up, and it needs the pair A holds. Its backend resets it after 4 s.
    const waiter = lab.spawn('router', [process.execPath, TCP_PEER, 'client', 'stall', LISTEN.address, `${LISTEN.port}`, '4000', '--proxy', `${CLIENT}:22001`]);
    const waiterEnd = new JsonLines<{ how: string }>(waiter.child.stdout!);
    const waiting = await until(counters, (x) => x.pipeWaiting === 1, 4000, 'the second flow waits for a pipe');
    assert.equal(waiting.active, 2);
    assert.equal(waiting.pipeWaits, start.pipeWaits + 1, 'its wait was counted');
    // B ends while waiting: it leaves the line; A still holds the pair.
    const left = await until(counters, (x) => x.active === 1, 8000, 'the waiting flow ended');
    assert.equal(left.pipeWaiting, 0, 'the ended flow left the line');
    assert.equal(left.closed['backend-ECONNRESET'], (start.closed['backend-ECONNRESET'] ?? 0) + 1);
    assert.equal((await waiterEnd.waitFor(() => true, 5000, 'the waiting client ended')).how, 'reset');
    const end = await until(counters, (x) => x.active === 0, 10_000, 'the holder ended');
    assert.equal((await holderEnd.waitFor(() => true, 5000, 'the holding client ended')).how, 'reset');
    assert.equal(end.pipeWaiting, 0);
    assert.equal(end.closed['backend-ECONNRESET'], (start.closed['backend-ECONNRESET'] ?? 0) + 2);
    assert.equal(end.budget.byConsumer.mmproxy.inUse, start.budget.byConsumer.mmproxy.inUse, 'the budget got both flows\' descriptors back');
    assert.equal(descriptorsOf(pid, 'socket:'), sockets, 'no socket left open');
    assert.ok(descriptorsOf(pid, 'pipe:') - runtimePipeEnds <= 2 * MIN_PIPES, 'no pipe past the pool\'s two');
    // A pair lost to the line would leave the next bulk flow waiting forever.
    const next = await client(['bulkmany', LISTEN.address, `${LISTEN.port}`, '1', `${BYTES}`, '--proxy', `${CLIENT}:22002`]);
    assert.deepEqual(next.failures, []);
    assert.equal(next.ok, 1);
    const after = await until(counters, (x) => x.active === 0, 5000, 'the next flow ended');
    assert.equal(after.pipeWaits, end.pipeWaits, 'the next flow found the pair free');
  });

  it('holds the connections its budget says (2 each past the reserved pipes), resets the next ones (counted, one event each), and makes room as they close', async () => {
    const start = await counters();
    const sockets = descriptorsOf(pid, 'socket:');
    const room = Math.floor(start.available / 2);
    assert.ok(room > 5, `room for a few connections: ${room}`);
    const rejectsBefore = lines.items.filter((l) => l.type === 'mmproxy.reject').length;
    const held = lab.spawn('router', [process.execPath, HELD_CONNECTIONS, LISTEN.address, `${LISTEN.port}`, `${CLIENT}:23000`]);
    const results = new JsonLines<{ event: string; held?: number; refused?: number; how?: string[]; open?: number }>(held.child.stdout!);
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, readdirSync(`/proc/${pid}/fd`).length)), 20);
    try {
      held.child.stdin!.write(`open ${room + 3}\n`);
      const opened = await results.waitFor((l) => l.event === 'opened', 60_000, 'the connections opened');
      assert.equal(opened.held, room, `as many held as the budget has room for: ${room}`);
      assert.deepEqual(opened.how, ['reset', 'reset', 'reset'], 'the next ones reset');
      const full = await until(counters, (x) => x.active === room && (x.rejected['descriptor-limit'] ?? 0) === (start.rejected['descriptor-limit'] ?? 0) + 3, 5000, 'counted');
      assert.equal(full.available < 2, true, `the budget is spent: ${full.available} left`);
      await lines.waitFor(() => lines.items.filter((l) => l.type === 'mmproxy.reject').length === rejectsBefore + 3, 5000, 'the refusals reported');
      assert.deepEqual(lines.items.filter((l) => l.type === 'mmproxy.reject').slice(rejectsBefore).map((l) => l.reason), ['descriptor-limit', 'descriptor-limit', 'descriptor-limit'], 'one event per refusal');
      assert.equal(lines.items.filter((l) => l.type === 'error').length, 0, `no error (EMFILE) reported: ${JSON.stringify(lines.items.filter((l) => l.type === 'error'))}`);
      // Room again once some close.
      held.child.stdin!.write('close 5\n');
      await results.waitFor((l) => l.event === 'closed', 5000, 'five closed');
      await until(counters, (x) => x.active === room - 5, 5000, 'their flows ended');
      held.child.stdin!.write('open 6\n');
      const again = await results.waitFor((l) => l.event === 'opened' && l !== opened, 30_000, 'opened again');
      assert.equal(again.held, 5, 'five fit again');
      assert.deepEqual(again.how, ['reset'], 'and the sixth did not');
    } finally {
      clearInterval(sampler);
      held.child.stdin!.end();
    }
    assert.ok(most <= NOFILE, `never past the limit: ${most} descriptors at most`);
    const end = await until(counters, (x) => x.active === 0, 10_000, 'every held flow ended');
    assert.equal(end.budget.byConsumer.mmproxy.inUse, 2 * MIN_PIPES, 'only the reserved pipes are left in the budget');
    assert.equal(end.available, start.available);
    assert.equal(end.rejected['descriptor-limit'], (start.rejected['descriptor-limit'] ?? 0) + 4);
    await until(() => Promise.resolve(descriptorsOf(pid, 'socket:')), (n) => n === sockets, 5000, 'no socket left open');
  });
});

describe('mmproxy splice engine out of descriptors: accepting pauses and resumes (root)', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create();
    try {
      await startBackend(lab);
    } catch (error) {
      await lab.destroy();
      throw error;
    }
  });
  after(() => lab.destroy());

  it('EMFILE on accept pauses accepting (one report per retry, not per turn); the waiting connection is served once descriptors are back', async () => {
    const port = 8450;
    const agent = lab.spawn('router', [process.execPath, MMPROXY_AGENT, JSON.stringify(mmproxyConfig(port)), 'splice', JSON.stringify({ threads: 1 })]);
    const lines = new JsonLines<Line>(agent.child.stdout!);
    await lines.waitFor((l) => l.type === 'ready', 15_000, 'the mmproxy listener ready');
    const pid = agent.child.pid ?? -1;
    // The lowest descriptor number free: as the limit, not one descriptor left (the kernel gives the
    // lowest free number, and only below the limit): the next accept fails with EMFILE.
    const numbers = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
    let open = 0;
    while (numbers.has(open)) open++;
    await lab.run('router', ['prlimit', '--pid', `${pid}`, `--nofile=${open}:${open + 64}`]);
    const held = lab.spawn('router', [process.execPath, HELD_CONNECTIONS, LISTEN.address, `${port}`, `${CLIENT}:26000`]);
    const results = new JsonLines<{ event: string; held?: number; how?: string[] }>(held.child.stdout!);
    try {
      held.child.stdin!.write('open 1\n');
      await lines.waitFor((l) => l.type === 'error' && l.code === 'EMFILE', 5000, 'EMFILE reported');
      const from = Date.now();
      const first = lines.items.filter((l) => l.type === 'error').length;
      await new Promise((r) => setTimeout(r, 1500));
      const reports = lines.items.filter((l) => l.type === 'error').length - first;
      const seconds = (Date.now() - from) / 1000;
      // One accept retry every 250 ms, not one per loop turn (about 100,000 a second before).
      assert.ok(reports <= Math.ceil(seconds * 4 + 1), `${reports} EMFILE reports in ${seconds} s`);
      assert.equal(lines.items.filter((l) => l.type === 'error' && l.code !== 'EMFILE').length, 0);
      await lab.run('router', ['prlimit', '--pid', `${pid}`, `--nofile=${open + 64}:${open + 64}`]);
      const opened = await results.waitFor((l) => l.event === 'opened', 10_000, 'the waiting connection served');
      assert.equal(opened.held, 1, `served once descriptors are back: ${JSON.stringify(opened)}; the listener said: ${lines.text.filter((t) => !t.includes('accept: EMFILE')).slice(-5).join(' | ')}`);
    } finally {
      held.child.stdin!.end();
      agent.child.stdin!.end();
    }
    await agent.exited;
  });
});

/** One measurement of each workload, run from the client namespace. */
import { fileURLToPath } from 'node:url';
import { TproxyError } from '../core/errors.js';
import { JsonLines } from '../lab/json-lines.js';
import { LAB_ADDRESSES, type Lab } from '../lab/topology.js';
import { usageOf } from '../sys/proc-usage.js';
import { HTTP_PORT, IPERF_PORT } from './servers.js';
import { parseIperf3Received, parseWrk } from './stats.js';

const TCP_HOLD = fileURLToPath(new URL('../lab/tcp-hold.js', import.meta.url));

/**
 * `baseline`: another tproxy build (`--baseline BIN`), for before/after figures from one run.
 * `routed`: this tproxy with a 10,000-prefix route table on its listener (src/bench/routed.ts),
 * against `tproxy`'s listener without routes; only the workloads that name it run it.
 * `reference`: the C reference relay (`--reference-relay`, src/bench/reference.ts); the stream
 * workloads name it.
 */
export type Scenario = 'forwarding' | 'tproxy' | 'haproxy' | 'baseline' | 'routed' | 'reference';
export const SCENARIOS: readonly Scenario[] = ['forwarding', 'tproxy', 'haproxy', 'baseline', 'routed', 'reference'];
/** The scenarios of a workload that does not name its own. */
export const DEFAULT_SCENARIOS: readonly Scenario[] = ['forwarding', 'tproxy', 'haproxy', 'baseline'];
/** The scenarios with a proxy in the path. */
export const PROXY_SCENARIOS: readonly Scenario[] = ['tproxy', 'haproxy', 'baseline'];

export interface Measurement {
  readonly value: number;
  readonly unit: string;
  /** Bytes the workload moved through the path (for CPU seconds per GB). */
  readonly bytes?: number;
  /** The work done, for the machine's CPU per unit of it (GB relayed, requests answered). */
  readonly work?: { readonly count: number; readonly unit: string };
  readonly extra?: Readonly<Record<string, number>>;
}

export interface WorkloadContext {
  /** The proxy's processes (none for kernel forwarding). */
  readonly proxyPids: () => readonly number[];
  /** Idle connections this scenario's proxy can hold under the descriptor limit (at most IDLE_CONNECTIONS). */
  readonly idleConnections: number;
}

export interface Workload {
  readonly name: string;
  readonly description: string;
  readonly unit: string;
  /** Higher is better (throughput) or lower is better (latency, memory). */
  readonly higherIsBetter: boolean;
  /** The scenarios it applies to (default DEFAULT_SCENARIOS). */
  readonly scenarios?: readonly Scenario[];
  /** Measured on a freshly started proxy (memory figures: a proxy keeps what it once allocated). */
  readonly freshProxy?: boolean;
  /** Holds context.idleConnections open at once: a tproxy starts with workers enough for them. */
  readonly holdsConnections?: boolean;
  run(lab: Lab, seconds: number, context: WorkloadContext): Promise<Measurement>;
}

const server = LAB_ADDRESSES.server.ipv4;

function iperf(name: string, description: string, streams: number): Workload {
  return {
    name,
    description,
    unit: 'Gbit/s',
    higherIsBetter: true,
    scenarios: [...DEFAULT_SCENARIOS, 'reference'],
    async run(lab, seconds) {
      const out = await lab.run('client', ['iperf3', '-c', server, '-p', `${IPERF_PORT}`, '-P', `${streams}`, '-t', `${seconds}`, '-J'], { timeoutMs: (seconds + 30) * 1000, check: false });
      const received = parseIperf3Received(out.stdout);
      const gb = received.bytes / 1e9;
      // The endpoints' CPU seconds per GB (iperf3's own count): with the proxy's, the stages that share the CPUs.
      const stages = received.cpuSeconds && gb > 0 ? { clientCpuSecondsPerGB: received.cpuSeconds.client / gb, serverCpuSecondsPerGB: received.cpuSeconds.server / gb } : undefined;
      return { value: received.bitsPerSecond / 1e9, unit: 'Gbit/s', bytes: received.bytes, work: { count: gb, unit: 'GB' }, ...(stages ? { extra: stages } : {}) };
    },
  };
}

function wrk(name: string, description: string, unit: string, connections: number, close: boolean, scenarios: readonly Scenario[] = DEFAULT_SCENARIOS): Workload {
  return {
    name,
    description,
    unit,
    higherIsBetter: true,
    scenarios,
    async run(lab, seconds) {
      const argv = ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), `http://${server}:${HTTP_PORT}/`];
      const r = parseWrk((await lab.run('client', argv, { timeoutMs: (seconds + 30) * 1000 })).stdout);
      return { value: r.requestsPerSecond, unit, work: { count: r.requests, unit: 'request' }, extra: { ...r.latencyMs, errors: r.errors } };
    },
  };
}

/** Connections the server namespace holds established on the HTTP port. */
async function serverEstablished(lab: Lab): Promise<number> {
  const out = await lab.run('server', ['ss', '-Htn', 'state', 'established', `( sport = :${HTTP_PORT} )`], { check: false });
  return out.stdout.split('\n').filter((l) => l.trim()).length;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

export const IDLE_CONNECTIONS = 10_000;
/** The share of a tproxy's cap the idle workload counts on: SO_REUSEPORT spreads connections over the workers unevenly. */
export const IDLE_SPREAD = 0.8;
/** The share of HAProxy's maxconn it counts on. */
const HAPROXY_IDLE_SHARE = 0.9;

/** How a proxy holds the idle workload: `connections` (at most IDLE_CONNECTIONS), with `workers` when a tproxy needs more than it starts with. */
export interface IdlePlan {
  readonly connections: number;
  readonly workers?: number;
}

/**
 * A tproxy whose workers hold `perWorker` flows each (each worker process has its own descriptor
 * limit): IDLE_CONNECTIONS, with more workers than `workers` when those hold fewer. Pure.
 */
export function tproxyIdlePlan(capacity: { readonly perWorker: number; readonly workers: number } | undefined): IdlePlan {
  if (!capacity || capacity.perWorker <= 0) return { connections: 0 };
  const needed = Math.ceil(IDLE_CONNECTIONS / (capacity.perWorker * IDLE_SPREAD));
  const workers = Math.max(needed, capacity.workers);
  const connections = Math.min(IDLE_CONNECTIONS, Math.floor(capacity.perWorker * workers * IDLE_SPREAD));
  return workers > capacity.workers ? { connections, workers } : { connections };
}

/** HAProxy is one process: what its maxconn (two descriptors each under the hard limit) holds. Pure. */
export function haproxyIdlePlan(maxconn: number): IdlePlan {
  return { connections: Math.min(IDLE_CONNECTIONS, Math.floor(maxconn * HAPROXY_IDLE_SHARE)) };
}

/**
 * Memory per idle connection: IDLE_CONNECTIONS connections opened through the proxy to nginx and
 * held without a byte; the proxy processes' RSS grows by this much per connection (descriptors
 * per connection in `extra`). Kernel memory (socket and pipe structures) is not process memory.
 */
function idleMemory(): Workload {
  return {
    name: 'idle-memory-per-conn',
    description: `${IDLE_CONNECTIONS} idle TCP connections held through the proxy (extra.connections: fewer where the descriptor limit holds fewer; a tproxy whose workers hold fewer runs with more workers): proxy process RSS growth per connection`,
    unit: 'KiB/conn',
    higherIsBetter: false,
    scenarios: PROXY_SCENARIOS,
    holdsConnections: true,
    freshProxy: true,
    async run(lab, _seconds, context) {
      const count = context.idleConnections;
      const baseline = await serverEstablished(lab);
      await new Promise((r) => setTimeout(r, 500)); // a fresh proxy settles
      const before = usageOf(context.proxyPids());
      const holder = lab.spawn('client', ['prlimit', `--nofile=${count + 1024}`, process.execPath, TCP_HOLD, server, `${HTTP_PORT}`, `${count}`]);
      const lines = new JsonLines<{ event: string; open?: number; failed?: number }>(holder.child.stdout!);
      try {
        const held = await lines.waitFor((l) => l.event === 'held', 120_000, 'idle connections opened');
        const open = held.open ?? 0;
        if (open < count * 0.99) throw new TproxyError('ERR_COMMAND_FAILED', `only ${open} of ${count} idle connections opened (${held.failed ?? 0} failed)`);
        // Accepted by the proxy is not yet connected upstream: wait for the server to hold them all.
        if (!(await waitUntil(async () => (await serverEstablished(lab)) >= baseline + open * 0.99, 30_000))) {
          throw new TproxyError('ERR_TIMEOUT', `the server did not see ${open} connections through the proxy within 30 s`);
        }
        await new Promise((r) => setTimeout(r, 300));
        const after = usageOf(context.proxyPids());
        return {
          value: (after.rssBytes - before.rssBytes) / open / 1024,
          unit: 'KiB/conn',
          extra: { connections: open, descriptorsPerConn: (after.descriptors - before.descriptors) / open, rssBeforeMiB: before.rssBytes / 2 ** 20, rssAfterMiB: after.rssBytes / 2 ** 20 },
        };
      } finally {
        holder.child.stdin?.end();
        await Promise.race([holder.exited, new Promise((r) => setTimeout(r, 10_000))]);
        await waitUntil(async () => (await serverEstablished(lab)) <= baseline, 30_000);
      }
    },
  };
}

export const TCP_WORKLOADS: readonly Workload[] = [
  iperf('tcp-throughput-1', 'iperf3, one TCP stream, client -> server', 1),
  iperf('tcp-throughput-4', 'iperf3, four parallel TCP streams, client -> server', 4),
  wrk('tcp-connections', 'wrk, 50 connections, one request each (Connection: close); routed: a listener with 10,000 destination prefixes', 'conn/s', 50, true, [...DEFAULT_SCENARIOS, 'routed']),
  wrk('tcp-keepalive-requests', 'wrk, 50 keep-alive connections, requests per second', 'req/s', 50, false),
  wrk('tcp-1conn-requests', 'wrk, one connection at a time, one request each (Connection: close): latency-bound', 'conn/s', 1, true),
  idleMemory(),
];

/** The workload whose runs give the proxy's CPU seconds per GB relayed. */
export const CPU_PER_GB_SOURCE = 'tcp-throughput-1';

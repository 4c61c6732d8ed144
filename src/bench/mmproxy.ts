/**
 * The mmproxy workload of `npm run bench` (issue 16): a load balancer (HAProxy, `send-proxy-v2`) on
 * the router in front of the backend half, which connects to nginx / iperf3 in the server namespace
 * FROM the client's address:
 *
 *   tproxy:  client -> HAProxy balancer -> tproxy run (mmproxy listener) -> server
 *   haproxy: client -> HAProxy balancer -> HAProxy (`accept-proxy`, `source 0.0.0.0 usesrc clientip`) -> server
 *
 * The same balancer (one HAProxy process, a frontend per scenario and service), the same reply
 * routing (tproxy's plan for a remote mmproxy backend: TCP divert and fwmark route, which HAProxy's
 * transparent backend connections need as well), rounds interleaved: new connections/s, keep-alive
 * requests/s and one-stream throughput, as ratios from one run. With a baseline (another tproxy
 * build, the bench's --baseline) a third backend half runs that build in the same rounds, so
 * before and after share the run's conditions.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RulesController } from '../control/apply.js';
import { TproxyError } from '../core/errors.js';
import { singleListenerRules } from '../core/rules/config.js';
import { planRules } from '../core/rules/plan.js';
import { JsonLines } from '../lab/json-lines.js';
import { LAB_ADDRESSES, type Lab, type SpawnedProcess } from '../lab/topology.js';
import { processTree, usageOf } from '../sys/proc-usage.js';
import { HTTP_PORT, IPERF_PORT, waitForPort } from './servers.js';
import { parseIperf3Received, parseWrk, summarize, type Summary } from './stats.js';
import { stallState } from './stall-state.js';

const BIN = fileURLToPath(new URL('../../../bin/tproxy.js', import.meta.url));
const BALANCER = LAB_ADDRESSES.routerClientSide.ipv4;
const SERVER = LAB_ADDRESSES.server.ipv4;

type Peer = 'tproxy' | 'haproxy' | 'baseline';
const PEERS: readonly Peer[] = ['tproxy', 'haproxy', 'baseline'];
/** The backend half listens on loopback: HTTP and iperf3, per peer; the balancer's frontends on the router's client side. */
const BACKEND_HALF: Record<Peer, { http: number; iperf: number }> = { tproxy: { http: 9101, iperf: 9102 }, haproxy: { http: 9201, iperf: 9202 }, baseline: { http: 9501, iperf: 9502 } };
const FRONT: Record<Peer, { http: number; iperf: number }> = { tproxy: { http: 9301, iperf: 9302 }, haproxy: { http: 9401, iperf: 9402 }, baseline: { http: 9601, iperf: 9602 } };
/**
 * Each peer's client ports, apart from each other and from the main scenarios' (10000-61999): a
 * transparent TIME_WAIT socket left on the router by one would catch another's reused pairs.
 */
const PORT_RANGES: Record<Peer, string> = { tproxy: '62000 63149', haproxy: '63150 64299', baseline: '64300 65499' };
/**
 * TIME_WAIT sockets the client's namespace keeps, at most (beyond them a closed connection goes at
 * once), well under a peer's 1,150 ports. wrk with `Connection: close` closes as soon as it has
 * the whole response; whenever the server's FIN comes through a backend half a moment after the
 * response's last bytes, the client closed first and holds the port for 60 s. Uncapped, a half
 * whose FIN lags more often (the uring engine's: ~1,000 of the 1,150 ports in TIME_WAIT, against
 * ~240 for the splice engine and ~690 for HAProxy) ran its peer out of ports within two rounds:
 * wrk's connect() failed (EADDRNOTAVAIL), and wrk never reconnects a connection whose connect
 * failed, so after 50 failures nothing was left to measure ("50 errors", the half idle).
 */
const CLIENT_TIME_WAIT_CAP = 512;
/** Each workload's unmeasured run per peer before the rounds (the halves' warm-up). */
const WARM_UP_SECONDS = 1;

interface MmproxyWorkload {
  readonly name: string;
  readonly unit: string;
  run(lab: Lab, peer: Peer, seconds: number): Promise<number>;
}

const wrk = (name: string, close: boolean): MmproxyWorkload => ({
  name,
  unit: close ? 'conn/s' : 'req/s',
  async run(lab, peer, seconds) {
    const argv = ['wrk', '-t1', '-c50', `-d${seconds}s`, ...(close ? ['-H', 'Connection: close'] : []), `http://${BALANCER}:${FRONT[peer].http}/`];
    const r = parseWrk((await lab.run('client', argv, { timeoutMs: (seconds + 30) * 1000 })).stdout);
    if (r.errors > r.requests / 100) throw new TproxyError('ERR_COMMAND_FAILED', `mmproxy ${name} ${peer}: ${r.errors} errors in ${r.requests} requests`);
    return r.requestsPerSecond;
  },
});

export const MMPROXY_WORKLOADS: readonly MmproxyWorkload[] = [
  wrk('mmproxy-connections', true),
  wrk('mmproxy-keepalive-requests', false),
  {
    name: 'mmproxy-throughput-1',
    unit: 'Gbit/s',
    async run(lab, peer, seconds) {
      const out = await lab.run('client', ['iperf3', '-c', BALANCER, '-p', `${FRONT[peer].iperf}`, '-t', `${seconds}`, '-J'], { timeoutMs: (seconds + 30) * 1000, check: false });
      return parseIperf3Received(out.stdout).bitsPerSecond / 1e9;
    },
  },
];

function balancerConfig(peers: readonly Peer[]): string {
  const fronts = peers.flatMap((peer) =>
    (['http', 'iperf'] as const).map(
      (service) => `frontend ${peer}_${service}
  bind ${BALANCER}:${FRONT[peer][service]}
  default_backend ${peer}_${service}
backend ${peer}_${service}
  server half 127.0.0.1:${BACKEND_HALF[peer][service]} send-proxy-v2
`,
    ),
  );
  return `global
  maxconn 4000
  nbthread 1
defaults
  mode tcp
  timeout connect 10s
  timeout client 600s
  timeout server 600s
${fronts.join('')}`;
}

function haproxyHalfConfig(): string {
  const services = (['http', 'iperf'] as const).map(
    (service) => `frontend half_${service}
  bind 127.0.0.1:${BACKEND_HALF.haproxy[service]} accept-proxy
  default_backend server_${service}
backend server_${service}
  source 0.0.0.0 usesrc clientip
  server s ${SERVER}:${service === 'http' ? HTTP_PORT : IPERF_PORT}
`,
  );
  return `global
  maxconn 4000
  nbthread 1
defaults
  mode tcp
  timeout connect 10s
  timeout client 600s
  timeout server 600s
${services.join('')}`;
}

/** A tproxy backend half (this build, or the baseline's); `udpPort`: its TPROXY listener's, apart from the other's. */
function tproxyConfig(peer: 'tproxy' | 'baseline', udpPort: number): string {
  return `listeners: [{port: ${udpPort}, families: [4], intercept: ["udp:9"]}]
rules: {apply: false}
mmproxy:
  - name: http
    listen: [127.0.0.1:${BACKEND_HALF[peer].http}]
    backend4: ${SERVER}:${HTTP_PORT}
  - name: iperf
    listen: [127.0.0.1:${BACKEND_HALF[peer].iperf}]
    backend4: ${SERVER}:${IPERF_PORT}
`;
}

export interface MmproxyWorkloadResult {
  readonly unit: string;
  readonly tproxy: Summary;
  readonly haproxy: Summary;
  readonly tproxyVsHaproxy: number;
  /** With a baseline build: its figures, and this build against it (>1: this build is better). */
  readonly baseline?: Summary;
  readonly tproxyVsBaseline?: number;
  /**
   * The backend half's CPU per unit of work (a connection, a request, a Gbit), in microseconds, its
   * user and kernel parts: medians over the rounds, per peer. Robust where the rates are noisy.
   */
  readonly cpuPerUnit?: Readonly<Partial<Record<Peer, { readonly userUs: number; readonly systemUs: number }>>>;
}

export interface MmproxyBenchResult {
  readonly workloads: Readonly<Record<string, MmproxyWorkloadResult>>;
}

export interface MmproxyBenchOptions {
  readonly rounds: number;
  readonly seconds: number;
  readonly report: (line: string) => void;
  readonly workloads?: readonly string[];
  readonly engine?: string | undefined;
  /** Another build's bin/tproxy.js, run as a third backend half in the same rounds. */
  readonly baseline?: string | undefined;
  readonly baselineEngine?: string | undefined;
}

/** Run the mmproxy workloads, `rounds` interleaved rounds of `seconds` each. The servers must be running. */
export async function benchMmproxy(lab: Lab, options: MmproxyBenchOptions): Promise<MmproxyBenchResult> {
  const peers = PEERS.filter((p) => p !== 'baseline' || options.baseline !== undefined);
  const workloads = MMPROXY_WORKLOADS.filter((w) => !options.workloads || options.workloads.includes(w.name));
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-bench-mmproxy-'));
  const rules = new RulesController(lab.runnerFor('router'));
  // The reply routing of a remote mmproxy backend, planned by tproxy (a UDP listener only, so the TCP divert is the mmproxy's).
  const plan = planRules({ ...singleListenerRules([{ transport: 'udp', ports: [{ from: 9, to: 9 }] }], { port: 8009, families: [4] }, { tableName: 'tproxy_bench_mm' }), mmproxy: { loopback: [], divert: [4], transports: ['tcp'], upstreamMarks: [2] } });
  const spawned: SpawnedProcess[] = [];
  const timeWaitCap = 'net.ipv4.tcp_max_tw_buckets';
  const timeWaitBefore = (await lab.run('client', ['sysctl', '-n', timeWaitCap])).stdout.trim();
  try {
    await lab.run('client', ['sysctl', '-q', '-w', `${timeWaitCap}=${CLIENT_TIME_WAIT_CAP}`]);
    await rules.apply(plan);
    for (const [name, text] of [['balancer.cfg', balancerConfig(peers)], ['half.cfg', haproxyHalfConfig()], ['tproxy.yaml', tproxyConfig('tproxy', 8009)], ['baseline.yaml', tproxyConfig('baseline', 8010)]] as const) writeFileSync(join(dir, name), text);
    const halfHaproxy = lab.spawn('router', ['haproxy', '-db', '-f', join(dir, 'half.cfg')]);
    spawned.push(halfHaproxy);
    spawned.push(lab.spawn('router', ['haproxy', '-db', '-f', join(dir, 'balancer.cfg')]));
    type Log = JsonLines<{ type: string; level?: string; message?: string; error?: string }>;
    const halves: { name: string; process: SpawnedProcess; log: Log }[] = [];
    for (const [name, bin, config, engine] of [['tproxy', BIN, 'tproxy.yaml', options.engine], ...(options.baseline ? [['baseline', options.baseline, 'baseline.yaml', options.baselineEngine] as const] : [])] as const) {
      const process_ = lab.spawn('router', [process.execPath, bin, 'run', '--config', join(dir, config), ...(engine ? ['--tcp-engine', engine] : []), '--log-format', 'json']);
      spawned.push(process_);
      const log: Log = new JsonLines(process_.child.stderr!);
      await log.waitFor((l) => l.type === 'ready', 20_000, `tproxy run (mmproxy, ${name}) starting`);
      halves.push({ name, process: process_, log });
    }
    /** What the tproxy halves said that was not routine, for a failed measurement. */
    const complaints = (): string =>
      halves
        .map(({ name, process: p, log }) => {
          const lines = [...(['error', 'warn'] as const).flatMap((level) => (log.find((l) => l.level === level) ? [JSON.stringify(log.find((l) => l.level === level))] : []))];
          return `${name} ${p.child.exitCode === null ? 'running' : `exited ${p.child.exitCode}`}${lines.length ? `; it logged ${lines.join(' ')}` : ''}`;
        })
        .join('; ');
    for (const peer of peers) for (const port of [FRONT[peer].http, FRONT[peer].iperf, BACKEND_HALF[peer].http, BACKEND_HALF[peer].iperf]) await waitForPort(lab, port, 10_000, 'router');
    // Unmeasured, each workload once per peer: a tproxy half starts with its JavaScript not yet
    // compiled (about half of its first seconds' extra CPU went to V8's optimizing compiler), which
    // a daemon pays once in its life, not in one of three measured rounds.
    for (const w of workloads) {
      for (const peer of peers) {
        await lab.run('client', ['sysctl', '-q', '-w', `net.ipv4.ip_local_port_range=${PORT_RANGES[peer]}`]);
        await w.run(lab, peer, WARM_UP_SECONDS);
      }
    }
    const samples: Record<string, Record<Peer, number[]>> = {};
    const cpuSamples: Record<string, Record<Peer, { user: number[]; system: number[] }>> = {};
    const pidOf = (peer: Peer): number | undefined => (peer === 'haproxy' ? halfHaproxy.child.pid : halves.find((h) => h.name === peer)?.process.child.pid);
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? peers : [...peers].reverse();
      for (const w of workloads) {
        for (const peer of order) {
          await lab.run('client', ['sysctl', '-q', '-w', `net.ipv4.ip_local_port_range=${PORT_RANGES[peer]}`]);
          const halfPid = pidOf(peer);
          const before = halfPid === undefined ? undefined : usageOf(processTree(halfPid));
          const value = await w.run(lab, peer, options.seconds).catch(async (error: unknown) => {
            // A stall says little in the logs: the half's sockets and threads as the failure left them.
            const iperf = w.name.includes('throughput');
            const pid = peer === 'haproxy' ? halfHaproxy.child.pid : halves.find((h) => h.name === peer)?.process.child.pid;
            const state = await stallState(lab, BACKEND_HALF[peer][iperf ? 'iperf' : 'http'], iperf ? IPERF_PORT : HTTP_PORT, pid).catch((e: unknown) => `not taken: ${(e as Error).message}`);
            throw new TproxyError('ERR_COMMAND_FAILED', `${(error as Error).message} (${complaints()}; ${peer} half after the failure: ${state})`, {}, { cause: error });
          });
          ((samples[w.name] ??= { tproxy: [], haproxy: [], baseline: [] })[peer]).push(value);
          // The half's CPU over the run, per unit of work (the rate times the run's length).
          let cpu = '';
          if (before && halfPid !== undefined && value > 0) {
            const after = usageOf(processTree(halfPid));
            const units = value * options.seconds;
            const systemUs = ((after.systemSeconds - before.systemSeconds) / units) * 1e6;
            const userUs = ((after.cpuSeconds - before.cpuSeconds) / units) * 1e6 - systemUs;
            const c = ((cpuSamples[w.name] ??= { tproxy: { user: [], system: [] }, haproxy: { user: [], system: [] }, baseline: { user: [], system: [] } })[peer]);
            c.user.push(userUs);
            c.system.push(systemUs);
            cpu = `, CPU ${userUs.toFixed(1)} us user + ${systemUs.toFixed(1)} us kernel per ${w.unit.split('/')[0]}`;
          }
          options.report(`round ${round + 1} ${w.name} ${peer}: ${value.toPrecision(4)} ${w.unit}${cpu}`);
        }
      }
    }
    // Proof that tproxy's listener carried its flows (a misrouted bench would measure nothing).
    const divert = (await rules.status(plan)).pieces.find((p) => p.name.includes('divert tcp ipv4'));
    if (!divert?.counter || divert.counter.packets === 0) throw new TproxyError('ERR_PROXY_BYPASSED', 'mmproxy bench: the divert rule counted no reply: the backend halves were not in the path');
    return {
      workloads: Object.fromEntries(
        workloads.map((w) => {
          const s = samples[w.name]!;
          const t = summarize(s.tproxy);
          const h = summarize(s.haproxy);
          const b = s.baseline.length > 0 ? summarize(s.baseline) : undefined;
          const c = cpuSamples[w.name];
          const cpuPerUnit = c ? Object.fromEntries(peers.filter((p) => c[p].user.length > 0).map((p) => [p, { userUs: summarize(c[p].user).median, systemUs: summarize(c[p].system).median }])) : undefined;
          const result: MmproxyWorkloadResult = { unit: w.unit, tproxy: t, haproxy: h, tproxyVsHaproxy: t.median / h.median, ...(b ? { baseline: b, tproxyVsBaseline: t.median / b.median } : {}), ...(cpuPerUnit ? { cpuPerUnit } : {}) };
          return [w.name, result];
        }),
      ),
    };
  } finally {
    for (const p of spawned) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await Promise.all(spawned.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000))])));
    await rules.remove(plan).catch(() => undefined);
    await lab.run('client', ['sysctl', '-q', '-w', `${timeWaitCap}=${timeWaitBefore}`], { check: false });
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatMmproxyBench(r: MmproxyBenchResult): string {
  const baseline = Object.values(r.workloads).some((w) => w.baseline);
  const rows = [['mmproxy workload (balancer -> backend half -> nginx/iperf3)', 'tproxy mmproxy', 'HAProxy accept-proxy + usesrc clientip', ...(baseline ? ['baseline tproxy'] : []), 'tproxy vs HAProxy', ...(baseline ? ['tproxy vs baseline'] : [])]];
  for (const [name, w] of Object.entries(r.workloads)) {
    const base = baseline ? [w.baseline ? `${w.baseline.median.toPrecision(4)} ${w.unit}` : '-'] : [];
    const vsBase = baseline ? [w.tproxyVsBaseline === undefined ? '-' : `${w.tproxyVsBaseline.toFixed(2)}x`] : [];
    rows.push([name, `${w.tproxy.median.toPrecision(4)} ${w.unit}`, `${w.haproxy.median.toPrecision(4)} ${w.unit}`, ...base, `${w.tproxyVsHaproxy.toFixed(2)}x`, ...vsBase]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

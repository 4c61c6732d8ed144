/**
 * `npm run bench`: kernel forwarding vs tproxy vs HAProxy (transparent mode), side by side in one
 * run on the namespace lab.
 *
 * One lab; tproxy (`--no-rules`) and HAProxy both run on the router for the whole run; the scenario
 * is switched by applying the tproxy rules toward one or the other, or removing them, so all
 * scenarios share every other condition. Rounds
 * are interleaved (the order alternates each round) and summarised as median, min and max.
 *
 *   node dist/src/bench/main.js [--quick] [--rounds N] [--seconds S] [--out FILE] [--workers N]
 *                               [--only NAME,NAME] [--no-udp] [--no-mmproxy] [--baseline OTHER/bin/tproxy.js] [--baseline-workers N]
 *                               [--haproxy-splice] [--tcp-engine ENGINE] [--baseline-tcp-engine ENGINE] [--no-dashboard]
 *                               [--udp-engine ENGINE] [--baseline-udp-engine ENGINE] [--reference-relay threads|epoll]
 *
 * --baseline adds a fourth scenario: another tproxy build (say the main branch's), so before and
 * after come from the same run and share its (noisy) conditions. With --baseline-workers it can be
 * this very build with another worker count; the mmproxy workloads run it as a third backend
 * half (bench/mmproxy.ts). --haproxy-splice makes HAProxy splice both
 * ways (`option splice-request` and `splice-response`), its fastest setting for streams.
 * --tcp-engine runs the tproxy scenario on that engine; --baseline-tcp-engine runs the baseline
 * on that one (this build unless --baseline names another), so two engines share one run:
 * `--tcp-engine uring --baseline-tcp-engine splice`. --udp-engine and --baseline-udp-engine do the
 * same for the UDP relay (bench/udp.ts): a second relay on the baseline engine, measured in the
 * same rounds: `--udp-engine uring --baseline-udp-engine epoll`.
 * --reference-relay adds the C reference relay (bench/reference.ts) as a scenario of the stream
 * workloads: what a minimal relay of that design reaches on this lab, beside tproxy.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { singleListenerRules } from '../core/rules/config.js';
import { planRules } from '../core/rules/plan.js';
import type { RulesPlan } from '../core/rules/planned.js';
import { startHaproxy, HAPROXY_PORT } from './haproxy.js';
import { RulesController } from '../control/apply.js';
import { TproxyError } from '../core/errors.js';
import { JsonLines } from '../lab/json-lines.js';
import { Lab, type SpawnedProcess } from '../lab/topology.js';
import { ProcessRunner } from '../sys/exec.js';
import { startServers, waitForPort, HTTP_PORT, IPERF_PORT } from './servers.js';
import { benchUdp, formatUdpBench, type UdpBenchResult } from './udp.js';
import { benchDashboard, formatDashboardBench, type DashboardBenchResult } from './dashboard.js';
import { benchRoute, formatRouteBench, type RouteBenchResult } from './route.js';
import { formatColumns, summarize, type Summary } from './stats.js';
import { ensureTools } from './tools.js';
import { machineCpu, machineCpuSince, processTree, usageOf } from '../sys/proc-usage.js';
import { machineSample, machineTable, summarizeMachine, type MachineSample, type MachineSummary } from './machine.js';
import { fileLimit } from '../sys/limits.js';
import { CPU_PER_GB_SOURCE, DEFAULT_SCENARIOS, haproxyIdlePlan, PROXY_SCENARIOS, SCENARIOS, tproxyIdlePlan, type IdlePlan, TCP_WORKLOADS, type Scenario, type Workload } from './workloads.js';
import { benchSniff, formatSniffBench, type SniffBenchRow } from './sniff.js';
import { ROUTED_PREFIXES, writeRoutedConfig } from './routed.js';
import { benchChartSvg, chartPathOf } from './chart.js';
import { buildReferenceRelay, parseReferenceMode, startReferenceRelay } from './reference.js';
import { benchMmproxy, formatMmproxyBench, MMPROXY_WORKLOADS, type MmproxyBenchResult } from './mmproxy.js';

const BIN = fileURLToPath(new URL('../../../bin/tproxy.js', import.meta.url));
const PROXY_PORT = 8000;
/** One per core of the lab machine, as HAProxy's own default would be there. */
const HAPROXY_THREADS = 2;
const BASELINE_PORT = 8002;
const ROUTED_PORT = 8003;
const REFERENCE_PORT = 8004;

const CPU_PER_GB = 'proxy-cpu-per-gb';

export interface BenchResult {
  readonly udp: UdpBenchResult | undefined;
  /** Daemon CPU with one dashboard page open vs none. */
  readonly dashboard: DashboardBenchResult | undefined;
  /** The mmproxy workloads (absent with --no-mmproxy). */
  readonly mmproxy: MmproxyBenchResult | undefined;
  /** The route decision microbenchmark (10,000 prefixes + 1,000 name suffixes vs no routes). */
  readonly route: RouteBenchResult;
  /** The per-flow parsers (TLS SNI, HTTP Host, PROXY v2, ...), ns per call. */
  readonly sniff: readonly SniffBenchRow[];
  /** How the HAProxy scenario ran. */
  readonly haproxy: { readonly splice: boolean; readonly threads: number };
  readonly date: string;
  readonly rounds: number;
  readonly seconds: number;
  readonly workloads: Record<string, WorkloadResult>;
}

export interface WorkloadResult {
  readonly unit: string;
  readonly description: string;
  readonly higherIsBetter: boolean;
  /** Scenarios the workload does not apply to (no proxy process under kernel forwarding) are absent. */
  readonly scenarios: Partial<Record<Scenario, Summary>>;
  /** tproxy and HAProxy against kernel forwarding (>1 is better than forwarding); null without forwarding. */
  readonly ratio: number | null;
  readonly haproxyRatio: number | null;
  readonly baselineRatio: number | null;
  /** The C reference relay against kernel forwarding; null without --reference-relay. */
  readonly referenceRatio: number | null;
  /** tproxy against HAProxy (>1: tproxy is better, whichever way the unit runs). */
  readonly vsHaproxy: number;
  /** tproxy against the baseline build (>1: this build is better); null without --baseline. */
  readonly vsBaseline: number | null;
  /** The listener with ROUTED_PREFIXES prefixes against the same listener without routes (>1: the routed one is better); null where not run. */
  readonly routedVsPlain: number | null;
  /** The whole machine's CPU per unit of work and busy share, per scenario (workloads that count work). */
  readonly machine: Partial<Record<Scenario, MachineSummary>>;
  readonly extra: unknown;
}

/** An empty list per scenario. */
function perScenario<T>(): Record<Scenario, T[]> {
  return { forwarding: [], tproxy: [], haproxy: [], baseline: [], routed: [], reference: [] };
}

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function haproxyLabel(splice: boolean): string {
  return `HAProxy 2.6 transparent${splice ? ' + splice' : ''}`;
}

function table(result: BenchResult, baseline: boolean): string {
  const routed = Object.values(result.workloads).some((w) => w.scenarios.routed);
  const reference = Object.values(result.workloads).some((w) => w.scenarios.reference);
  const rows = [['workload', 'kernel forwarding', 'tproxy', haproxyLabel(result.haproxy.splice), ...(baseline ? ['baseline tproxy'] : []), ...(routed ? [`tproxy + ${ROUTED_PREFIXES / 1000}k prefixes`] : []), ...(reference ? ['C reference relay'] : []), 'tproxy / fwd', 'HAProxy / fwd', ...(baseline ? ['baseline / fwd'] : []), ...(reference ? ['reference / fwd'] : []), 'tproxy vs HAProxy', ...(baseline ? ['tproxy vs baseline'] : []), ...(routed ? ['routed vs no routes'] : [])]];
  const fmt = (s: Summary | undefined, unit: string): string => (s ? `${s.median.toPrecision(4)} ${unit} [${s.min.toPrecision(3)}-${s.max.toPrecision(3)}]` : '-');
  const x = (r: number | null): string => (r === null ? '-' : `${r.toFixed(2)}x`);
  for (const [name, w] of Object.entries(result.workloads)) {
    rows.push([
      name, fmt(w.scenarios.forwarding, w.unit), fmt(w.scenarios.tproxy, w.unit), fmt(w.scenarios.haproxy, w.unit), ...(baseline ? [fmt(w.scenarios.baseline, w.unit)] : []), ...(routed ? [fmt(w.scenarios.routed, w.unit)] : []), ...(reference ? [fmt(w.scenarios.reference, w.unit)] : []),
      x(w.ratio), x(w.haproxyRatio), ...(baseline ? [x(w.baselineRatio)] : []), ...(reference ? [x(w.referenceRatio)] : []), x(w.vsHaproxy), ...(baseline ? [x(w.vsBaseline)] : []), ...(routed ? [x(w.routedVsPlain)] : []),
    ]);
  }
  return formatColumns(rows);
}

/** A row computed from another workload's runs, not run itself. */
const cpuPerGbRow: Workload = {
  name: CPU_PER_GB,
  description: `proxy CPU seconds (utime + stime of all its processes) per GB relayed, from the ${CPU_PER_GB_SOURCE} runs`,
  unit: 's/GB',
  higherIsBetter: false,
  scenarios: ['tproxy', 'haproxy', 'baseline', 'reference'],
  run: () => Promise.reject(new Error('derived row')),
};

function resultOf(w: Workload, s: Record<Scenario, number[]>, extra: unknown, machineSamples: Partial<Record<Scenario, MachineSample[]>>): WorkloadResult {
  const scenarios: Partial<Record<Scenario, Summary>> = {};
  for (const name of SCENARIOS) if (s[name].length > 0) scenarios[name] = summarize(s[name]);
  const machine: Partial<Record<Scenario, MachineSummary>> = {};
  for (const name of SCENARIOS) {
    const m = summarizeMachine(machineSamples[name] ?? []);
    if (m) machine[name] = m;
  }
  // Better-is-bigger ratio of a against b, whichever way the unit runs.
  const better = (a: Summary | undefined, b: Summary | undefined): number | null => (a && b ? (w.higherIsBetter ? a.median / b.median : b.median / a.median) : null);
  return {
    unit: w.unit,
    description: w.description,
    higherIsBetter: w.higherIsBetter,
    scenarios,
    ratio: better(scenarios.tproxy, scenarios.forwarding),
    haproxyRatio: better(scenarios.haproxy, scenarios.forwarding),
    baselineRatio: better(scenarios.baseline, scenarios.forwarding),
    referenceRatio: better(scenarios.reference, scenarios.forwarding),
    vsHaproxy: better(scenarios.tproxy, scenarios.haproxy) ?? NaN,
    vsBaseline: better(scenarios.tproxy, scenarios.baseline),
    routedVsPlain: better(scenarios.routed, scenarios.tproxy),
    machine,
    extra,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      out: { type: 'string', default: 'bench-results.json' },
      workers: { type: 'string' },
      only: { type: 'string' },
      'no-udp': { type: 'boolean', default: false },
      'no-dashboard': { type: 'boolean', default: false },
      'no-mmproxy': { type: 'boolean', default: false },
      baseline: { type: 'string' },
      'baseline-workers': { type: 'string' },
      'haproxy-splice': { type: 'boolean', default: false },
      'tcp-engine': { type: 'string' },
      'baseline-tcp-engine': { type: 'string' },
      'udp-engine': { type: 'string' },
      'baseline-udp-engine': { type: 'string' },
      'reference-relay': { type: 'string' },
    },
  });
  const referenceMode = values['reference-relay'] === undefined ? undefined : parseReferenceMode(values['reference-relay']);
  const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
  const seconds = Number(values.seconds ?? (values.quick ? 2 : 5));
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root: it builds network namespaces');
  // First, before the lab loads the machine: the route decision needs no root and no lab.
  const route = benchRoute({ rounds: values.quick ? 3 : 7 });
  say(formatRouteBench(route));
  const sniff = benchSniff(values.quick ? 50_000 : 200_000, values.quick ? 3 : 5);
  say(formatSniffBench(sniff));
  const runner = new ProcessRunner();
  await ensureTools(['iperf3', 'wrk', 'nginx', 'haproxy', ...(values['no-udp'] ? [] : ['danted'])], runner, say);

  const lab = await Lab.create();
  // Everything the run writes (nginx's prefix, HAProxy's and the routed listener's configuration)
  // goes under one directory, removed at the end, on failure and on Ctrl-C.
  const scratch = mkdtempSync(join(tmpdir(), 'tproxy-bench-'));
  const routedDir = join(scratch, 'routed');
  mkdirSync(routedDir);
  const stopOnSignal = (): void => {
    lab.destroySync();
    rmSync(scratch, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', stopOnSignal);
  try {
    // The client reuses its TIME_WAIT ports (older than 1 s) for new connections, as load generators
    // do: each scenario has 10,400 client ports (below), which the connection workloads fill with
    // TIME_WAIT in 2-3 s whenever the client closes first; connect() then scans for a free port
    // (0.4 ms at 85% full), and the one-at-a-time workload measured that scan, not the path.
    await lab.run('client', ['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
    await startServers(lab, scratch);
    // Without --workers, tproxy runs its default worker count: the bench measures the default.
    const workers = values.workers;
    // --baseline-tcp-engine alone compares two engines of this very build in one run.
    const baselineBin = values.baseline ?? (values['baseline-tcp-engine'] !== undefined ? BIN : undefined);
    const engineArgs = (engine: string | undefined): string[] => (engine !== undefined ? ['--tcp-engine', engine] : []);
    const only = values.only?.split(',');
    const workloads: readonly Workload[] = TCP_WORKLOADS.filter((w) => !only || only.includes(w.name));
    // --only may name mmproxy workloads too (alone: no TCP workload runs).
    const mmproxyWorkloads = MMPROXY_WORKLOADS.filter((w) => !only || only.includes(w.name)).map((w) => w.name);
    if (workloads.length === 0 && mmproxyWorkloads.length === 0) throw new TproxyError('ERR_INVALID_ARGUMENT', `--only names no workload; they are: ${[...TCP_WORKLOADS, ...MMPROXY_WORKLOADS].map((w) => w.name).join(', ')}`);
    // The baseline runs with --baseline only, the reference relay with --reference-relay only; the
    // routed listener and the reference relay only for the workloads that name them.
    const named = (s: Scenario): boolean => workloads.some((w) => w.scenarios?.includes(s));
    const scenarioList = SCENARIOS.filter((s) => (s !== 'baseline' || baselineBin !== undefined) && (s !== 'routed' || named('routed')) && (s !== 'reference' || (referenceMode !== undefined && named('reference'))));
    const routedConfig = writeRoutedConfig(routedDir, ROUTED_PORT, [IPERF_PORT, HTTP_PORT]);
    /** The plain listener from flags, or the routed one from its configuration. */
    const startTproxy = async (bin = BIN, port = PROXY_PORT, workerCount = workers, engine = values['tcp-engine']): Promise<{ process: SpawnedProcess; capacity: number; workers: number }> => {
      const listener = port === ROUTED_PORT ? ['--config', routedConfig] : ['--no-rules', '--listen', `${port}`, '--intercept', `tcp:${IPERF_PORT},${HTTP_PORT}`, '--family', '4'];
      const spawned = lab.spawn('router', [process.execPath, bin, 'run', ...listener, ...(port === ROUTED_PORT ? [] : engineArgs(engine)), ...(workerCount ? ['--workers', workerCount] : []), '--log-format', 'json']);
      const ready = await new JsonLines<{ type: string; maxConnectionsPerWorker?: number; tcpWorkers?: number[] }>(spawned.child.stderr!).waitFor((l) => l.type === 'ready', 20_000, 'the proxy starting');
      const count = ready.tcpWorkers?.length ?? 1;
      return { process: spawned, capacity: (ready.maxConnectionsPerWorker ?? 0) * count, workers: count };
    };
    // Both proxies live under this process's hard descriptor limit (raising it needs CAP_SYS_RESOURCE).
    const hardLimit = fileLimit().hard;
    const haproxySplice = values['haproxy-splice'];
    // Two descriptors per connection, and with splice a pipe (two more) per four connections
    // (HAProxy's default maxpipes): HAProxy refuses to start when they do not fit.
    const haproxyMaxconn = Math.min(40_000, Math.floor((hardLimit - 100) / (haproxySplice ? 2.5 : 2)));
    const startHaproxyReady = async (): Promise<SpawnedProcess> => {
      const spawned = startHaproxy(lab, { splice: haproxySplice, threads: HAPROXY_THREADS, maxconn: haproxyMaxconn }, scratch);
      await waitForPort(lab, HAPROXY_PORT, 10_000, 'router');
      return spawned;
    };
    const ready = await startTproxy();
    let proxy = ready.process;
    let haproxy = await startHaproxyReady();
    /** The baseline's cap per worker and worker count as it starts for the other workloads. */
    let baselineCapacity: { perWorker: number; workers: number } | undefined;
    const startBaseline = async (workerCount = values['baseline-workers'] ?? workers): Promise<SpawnedProcess | undefined> => {
      if (!baselineBin) return undefined;
      const started = await startTproxy(baselineBin, BASELINE_PORT, workerCount, values['baseline-tcp-engine']);
      baselineCapacity ??= { perWorker: started.capacity / started.workers, workers: started.workers };
      return started.process;
    };
    let baseline = await startBaseline();
    const startRouted = async (): Promise<SpawnedProcess | undefined> => (scenarioList.includes('routed') ? (await startTproxy(BIN, ROUTED_PORT)).process : undefined);
    let routed = await startRouted();
    const referenceBinary = scenarioList.includes('reference') ? await buildReferenceRelay(scratch, runner, say) : undefined;
    const startReference = async (): Promise<SpawnedProcess | undefined> => {
      if (referenceBinary === undefined || referenceMode === undefined) return undefined;
      const spawned = startReferenceRelay(lab, referenceBinary, REFERENCE_PORT, referenceMode);
      await waitForPort(lab, REFERENCE_PORT, 10_000, 'router');
      return spawned;
    };
    let reference = await startReference();
    /**
     * A fresh process: memory a proxy freed keeps its RSS, and a later round would measure reuse.
     * `workerCount`: a tproxy with that many workers (the idle workload's), else as started first.
     */
    const restart = async (scenario: Scenario, workerCount?: string): Promise<void> => {
      if (scenario === 'tproxy') {
        proxy.child.kill('SIGTERM');
        await proxy.exited;
        proxy = (await startTproxy(BIN, PROXY_PORT, workerCount ?? workers)).process;
      } else if (scenario === 'haproxy') {
        haproxy.child.kill('SIGTERM');
        await haproxy.exited;
        haproxy = await startHaproxyReady();
      } else if (scenario === 'baseline' && baseline) {
        baseline.child.kill('SIGTERM');
        await baseline.exited;
        baseline = await startBaseline(workerCount);
      } else if (scenario === 'routed' && routed) {
        routed.child.kill('SIGTERM');
        await routed.exited;
        routed = await startRouted();
      } else if (scenario === 'reference' && reference) {
        reference.child.kill('SIGTERM');
        await reference.exited;
        reference = await startReference();
      }
    };
    // Idle connections per scenario: IDLE_CONNECTIONS where the proxy can hold them. Each tproxy
    // worker has its own descriptor limit, so a tproxy whose workers hold fewer runs the idle
    // workload with more workers (SO_REUSEPORT spreads the connections unevenly: 0.8 of the cap);
    // HAProxy is one process: 2 descriptors per connection under the hard limit (0.9 of maxconn).
    const tproxyCapacity = { perWorker: ready.capacity / ready.workers, workers: ready.workers };
    const idlePlan = (scenario: Scenario): IdlePlan => (scenario === 'haproxy' ? haproxyIdlePlan(haproxyMaxconn) : tproxyIdlePlan(scenario === 'baseline' ? baselineCapacity : tproxyCapacity));
    const idleSummary = PROXY_SCENARIOS.filter((s) => scenarioList.includes(s))
      .map((s) => {
        const plan = idlePlan(s);
        return `${s} ${plan.connections}${plan.workers ? ` (${plan.workers} workers)` : ''}`;
      })
      .join(', ');
    const proxyPids: Record<Scenario, () => readonly number[]> = {
      forwarding: () => [],
      tproxy: () => processTree(proxy.child.pid ?? -1),
      haproxy: () => processTree(haproxy.child.pid ?? -1),
      baseline: () => processTree(baseline?.child.pid ?? -1),
      routed: () => processTree(routed?.child.pid ?? -1),
      reference: () => processTree(reference?.child.pid ?? -1),
    };
    const planFor = (listenPort: number): RulesPlan =>
      planRules(singleListenerRules([{ transport: 'tcp', ports: [{ from: IPERF_PORT, to: IPERF_PORT }, { from: HTTP_PORT, to: HTTP_PORT }] }], { port: listenPort, families: [4] }, { tableName: 'tproxy_bench' }));
    const plans: Record<Scenario, RulesPlan> = { forwarding: planFor(PROXY_PORT), tproxy: planFor(PROXY_PORT), haproxy: planFor(HAPROXY_PORT), baseline: planFor(BASELINE_PORT), routed: planFor(ROUTED_PORT), reference: planFor(REFERENCE_PORT) };
    const rules = new RulesController(lab.runnerFor('router'));
    const intercepted = async (scenario: Scenario): Promise<number> => {
      if (scenario === 'forwarding') return 0;
      const status = await rules.status(plans[scenario]);
      return status.pieces.filter((p) => p.kind === 'rule' && p.name.includes('intercept')).reduce((n, p) => n + (p.counter?.packets ?? 0), 0);
    };
    // Each scenario's client connections use their own ephemeral ports: a proxy's transparent
    // TIME_WAIT sockets on the router would otherwise catch (early demux) and black-hole the same
    // address/port pairs when a later scenario forwards them.
    // The reference relay runs the stream workloads only: a few ports do.
    const PORT_RANGES: Record<Scenario, string> = { forwarding: '10000 20399', tproxy: '20400 30799', haproxy: '30800 41199', baseline: '41200 51599', routed: '51600 61999', reference: '62000 64999' };
    const scenarioOn = async (scenario: Scenario): Promise<void> => {
      await lab.run('client', ['sysctl', '-q', '-w', `net.ipv4.ip_local_port_range=${PORT_RANGES[scenario]}`]);
      if (scenario === 'forwarding') await rules.remove(plans.forwarding);
      else await rules.apply(plans[scenario]);
    };

    const samples: Record<string, Record<Scenario, number[]>> = {};
    const extras: Record<string, Record<Scenario, Record<string, number>[]>> = {};
    const machineSamples: Record<string, Partial<Record<Scenario, MachineSample[]>>> = {};
    say(`bench: ${rounds} round(s) of ${seconds} s per workload and scenario, interleaved; proxy with ${ready.workers} worker(s), upstream direct; descriptor hard limit ${hardLimit}; idle connections: ${idleSummary}`);
    for (let round = 0; round < rounds; round++) {
      const order: Scenario[] = round % 2 === 0 ? [...scenarioList] : [...scenarioList].reverse();
      for (const workload of workloads) {
        for (const scenario of order.filter((s) => (workload.scenarios ?? DEFAULT_SCENARIOS).includes(s))) {
          const idle = workload.holdsConnections ? idlePlan(scenario) : undefined;
          if (workload.freshProxy) await restart(scenario, idle?.workers === undefined ? undefined : `${idle.workers}`);
          await scenarioOn(scenario);
          const before = await intercepted(scenario);
          const pids = proxyPids[scenario]();
          const usageBefore = usageOf(pids);
          const machineBefore = machineCpu();
          const measured = await workload.run(lab, seconds, { proxyPids: proxyPids[scenario], idleConnections: idle?.connections ?? 0 });
          const machineSpent = machineCpuSince(machineBefore);
          const usageAfter = usageOf(pids);
          const cpuSeconds = usageAfter.cpuSeconds - usageBefore.cpuSeconds;
          const proxySpent = scenario === 'forwarding' ? undefined : { cpuSeconds, systemSeconds: usageAfter.systemSeconds - usageBefore.systemSeconds };
          const machine = measured.work ? machineSample(machineSpent, measured.work, proxySpent) : undefined;
          if (machine) ((machineSamples[workload.name] ??= {})[scenario] ??= []).push(machine);
          // CPU per GB: the proxy's own threads (user and kernel time: splice runs in its syscalls).
          const cpuPerGb = scenario !== 'forwarding' && measured.bytes ? cpuSeconds / (measured.bytes / 1e9) : undefined;
          const m = scenario === 'forwarding' ? measured : { ...measured, extra: { ...measured.extra, proxyCpuSeconds: cpuSeconds, ...(cpuPerGb === undefined ? {} : { cpuSecondsPerGB: cpuPerGb }) } };
          if (cpuPerGb !== undefined && workload.name === CPU_PER_GB_SOURCE) {
            ((samples[CPU_PER_GB] ??= perScenario())[scenario]).push(cpuPerGb);
          }
          // A proxy that is not in the path looks exactly like kernel forwarding: prove it was.
          if (scenario !== 'forwarding' && (await intercepted(scenario)) <= before) {
            throw new TproxyError('ERR_PROXY_BYPASSED', `${workload.name} ${scenario}: the tproxy rule counted no new packet: the traffic did not reach ${scenario}`);
          }
          ((samples[workload.name] ??= perScenario())[scenario]).push(m.value);
          ((extras[workload.name] ??= perScenario())[scenario]).push(m.extra ?? {});
          const ends = m.extra?.['clientCpuSecondsPerGB'] !== undefined && m.extra['serverCpuSecondsPerGB'] !== undefined ? `; iperf3 client ${m.extra['clientCpuSecondsPerGB'].toFixed(3)}, server ${m.extra['serverCpuSecondsPerGB'].toFixed(3)} s/GB` : '';
          say(`  round ${round + 1} ${workload.name} ${scenario}: ${m.value.toPrecision(4)} ${m.unit}${cpuPerGb === undefined ? '' : ` (proxy CPU ${cpuPerGb.toFixed(3)} s/GB${ends})`}${cpuPerGb === undefined && ends ? ` (${ends.slice(2)})` : ''}`);
          // The other workloads measure the proxy as it starts by default.
          if (idle?.workers !== undefined) await restart(scenario);
        }
      }
    }
    await rules.remove(plans.forwarding);
    let udp: UdpBenchResult | undefined;
    if (!values['no-udp']) {
      say('bench: UDP (kernel forwarding vs tproxy; HAProxy has no UDP relay)');
      const engines = { ...(values['udp-engine'] !== undefined ? { engine: values['udp-engine'] } : {}), ...(values['baseline-udp-engine'] !== undefined ? { baselineEngine: values['baseline-udp-engine'] } : {}) };
      udp = await benchUdp(lab, { rounds, durationMs: seconds * 1000, ...engines, report: (line) => say(`  ${line}`) });
    }
    let dashboard: DashboardBenchResult | undefined;
    if (!values['no-dashboard']) {
      say('bench: daemon CPU with one dashboard page open vs none (wrk connection churn)');
      dashboard = await benchDashboard(lab, { rounds, durationMs: seconds * 1000, report: (line) => say(`  ${line}`) });
    }
    let mmproxy: MmproxyBenchResult | undefined;
    if (!values['no-mmproxy'] && mmproxyWorkloads.length > 0) {
      say('bench: mmproxy (HAProxy balancer -> tproxy mmproxy vs HAProxy accept-proxy + usesrc clientip -> server)');
      // The baseline build (--baseline, or this one on --baseline-tcp-engine) as a third backend half in the same rounds.
      mmproxy = await benchMmproxy(lab, { rounds, seconds, workloads: mmproxyWorkloads, engine: values['tcp-engine'], baseline: baselineBin, baselineEngine: values['baseline-tcp-engine'], report: (line) => say(`  ${line}`) });
    }
    const result: BenchResult = {
      udp,
      dashboard,
      mmproxy,
      route,
      sniff,
      haproxy: { splice: haproxySplice, threads: HAPROXY_THREADS },
      date: new Date().toISOString(),
      rounds,
      seconds,
      workloads: Object.fromEntries(
        [...workloads, ...(samples[CPU_PER_GB] ? [cpuPerGbRow] : [])].map((w) => {
          const s = samples[w.name] ?? perScenario();
          return [w.name, resultOf(w, s, extras[w.name], machineSamples[w.name] ?? {})];
        }),
      ),
    };
    say('');
    say(table(result, baselineBin !== undefined));
    say('');
    say(machineTable(result.workloads, haproxyLabel(haproxySplice)));
    say('');
    if (udp) say(formatUdpBench(udp));
    if (dashboard) say(formatDashboardBench(dashboard));
    if (mmproxy) say(`${formatMmproxyBench(mmproxy)}\n`);
    say(formatRouteBench(route));
    say(formatSniffBench(sniff));
    writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
    const chart = chartPathOf(values.out);
    writeFileSync(chart, benchChartSvg({ ...result, haproxyLabel: haproxyLabel(result.haproxy.splice) }));
    say(`\nbench: figures and ratios written to ${values.out}, the chart of the ratios to ${chart}`);
  } finally {
    process.off('SIGINT', stopOnSignal);
    try {
      await lab.destroy();
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).message}\n`);
  process.exit(1);
});

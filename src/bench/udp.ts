/**
 * UDP benchmark: the relay against kernel forwarding, side by side in one run on one lab.
 *
 * The server namespace runs `udp-load serve` with an echo and a sink port for each path; `tproxy
 * run` in the router intercepts only the proxied ports, so the others are plain kernel forwarding
 * through the same router. Each round measures, interleaved:
 *   - round trips per second: `--flows` connected client sockets, one small datagram in flight each;
 *   - datagrams per second: one client socket sending as fast as it can, counted at the sink;
 *   - with `socks` (default): round trips per second through the relay and Dante's danted (a
 *     socks5 outbound: UDP ASSOCIATE, every datagram wrapped and unwrapped), against the relay
 *     straight to the server, on their own ports of the same listener.
 * Figures are medians (and min / max) over the rounds; ratios are relay / kernel, and socks5 /
 * relay for the SOCKS5 path.
 *
 * `engine` runs the relay on that UDP engine (--udp-engine); `baselineEngine` adds a second `tproxy
 * run` on its own listener and ports with that engine, measured in the same rounds (round trips
 * with both flow counts and datagrams/s), so two engines compare under one run's conditions.
 *
 * Runnable: `node dist/src/bench/udp.js [--rounds N] [--duration-ms D] [--flows F]` builds a lab,
 * prints a table and the JSON figures, and removes the lab (needs root).
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { TproxyError } from '../core/errors.js';
import type { UdpCounters } from '../dataplane/udp/counters.js';
import { JsonLines } from '../lab/json-lines.js';
import { LAB_ADDRESSES, Lab } from '../lab/topology.js';
import { machineCpu, machineCpuSince, processTree, usageOf } from '../sys/proc-usage.js';
import { summarize } from './stats.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SOCKS_PORT, startDanted } from './servers.js';

const BIN = fileURLToPath(new URL('../../../bin/tproxy.js', import.meta.url));
const LOAD = fileURLToPath(new URL('../lab/udp-load.js', import.meta.url));

export interface UdpBenchOptions {
  /** Rounds of each measurement (default 3). */
  readonly rounds?: number;
  /** Length of each measurement in ms (default 2000). */
  readonly durationMs?: number;
  /** Concurrent flows of the round-trip test (default 4). */
  readonly flows?: number;
  /** Concurrent flows of the many-flow round-trip test (default 64), where epoll relays fall behind. */
  readonly manyFlows?: number;
  /** Payload bytes (default 64). */
  readonly size?: number;
  /** Called with a line of progress. */
  readonly report?: (line: string) => void;
  /** Also measure UDP through danted (a socks5 outbound); default true (needs danted). */
  readonly socks?: boolean;
  /** The relay's UDP engine (--udp-engine); absent: the default. */
  readonly engine?: string;
  /** A second relay on this engine, measured in the same rounds (absent: none). */
  readonly baselineEngine?: string;
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export interface UdpBenchFigure {
  readonly kernel: Spread;
  readonly relay: Spread;
  /** relay median / kernel median. */
  readonly ratio: number;
  /**
   * The whole machine (all CPUs, every process) during the runs, medians: share of CPU time busy,
   * and microseconds of CPU per round trip or datagram. A path that leaves the machine idle is
   * bound by latency (thread wake-ups), not by CPU.
   */
  readonly machine: { readonly kernel: MachineFigure; readonly relay: MachineFigure };
}

export interface MachineFigure {
  readonly busy: number;
  readonly cpuMicrosPerUnit: number;
  /** The relay's own processes (user + system), microseconds per unit: what its engine costs, whatever else loads the machine. */
  readonly proxyMicrosPerUnit: number;
  /** Its kernel part (system time: its system calls and the packet processing they run, the peer's wake-up included). */
  readonly proxySystemMicrosPerUnit: number;
  /**
   * The endpoints' own processes, microseconds per unit (round trips only): the client (udp-load
   * rr, its own count) and the echo server. With the relay's, the three stages that share the
   * machine's CPUs: unlike the machine's figure, these hardly move with other load on the machine.
   */
  readonly clientMicrosPerUnit?: number;
  readonly serverMicrosPerUnit?: number;
}

interface Run {
  readonly perSecond: number;
  readonly busy: number;
  readonly cpuMicrosPerUnit: number;
  readonly proxyMicrosPerUnit: number;
  readonly proxySystemMicrosPerUnit: number;
  readonly clientMicrosPerUnit?: number;
  readonly serverMicrosPerUnit?: number;
}

/** What a measurement gives: events per second, and the client's own CPU seconds when it counts them. */
interface Measured {
  readonly perSecond: number;
  readonly clientCpuSeconds?: number;
}

/**
 * Run `measure` (events per second over durationMs) and what the machine, the relay `pid` (with
 * its children) and the server process `serverPid` spent meanwhile.
 */
async function withMachine(durationMs: number, measure: () => Promise<Measured>, pid?: number, serverPid?: number): Promise<Run> {
  const pids = pid === undefined ? [] : processTree(pid);
  const servers = serverPid === undefined ? [] : processTree(serverPid);
  const proxyBefore = usageOf(pids);
  const serverBefore = usageOf(servers).cpuSeconds;
  const before = machineCpu();
  const { perSecond, clientCpuSeconds } = await measure();
  const spent = machineCpuSince(before);
  const proxyAfter = usageOf(pids);
  const serverSeconds = usageOf(servers).cpuSeconds - serverBefore;
  const total = spent.busySeconds + spent.idleSeconds;
  const events = (perSecond * durationMs) / 1000;
  const micros = (seconds: number): number => (events > 0 ? (seconds / events) * 1e6 : 0);
  return {
    perSecond,
    busy: total > 0 ? spent.busySeconds / total : 0,
    cpuMicrosPerUnit: micros(spent.busySeconds),
    proxyMicrosPerUnit: micros(proxyAfter.cpuSeconds - proxyBefore.cpuSeconds),
    proxySystemMicrosPerUnit: micros(proxyAfter.systemSeconds - proxyBefore.systemSeconds),
    ...(clientCpuSeconds !== undefined ? { clientMicrosPerUnit: micros(clientCpuSeconds) } : {}),
    ...(serverPid !== undefined ? { serverMicrosPerUnit: micros(serverSeconds) } : {}),
  };
}

export interface UdpBenchResult {
  readonly rounds: number;
  readonly durationMs: number;
  readonly flows: number;
  readonly manyFlows: number;
  readonly size: number;
  /** Round trips per second. */
  readonly roundTrips: UdpBenchFigure;
  /** Round trips per second with manyFlows flows. */
  readonly roundTripsManyFlows: UdpBenchFigure;
  /** Datagrams per second delivered to the sink. */
  readonly datagrams: UdpBenchFigure;
  /**
   * Round trips per second through the relay and danted (socks5 outbound), side by side with the
   * relay straight to the server (`kernel` in this figure is the direct relay, `relay` the SOCKS5
   * path; ratio: socks5 / direct).
   */
  readonly socksRoundTrips: UdpBenchFigure | undefined;
  /** The relay's counters at the end (proof that the relayed runs went through it). */
  readonly relayCounters: UdpCounters;
  /** The relay's UDP engine (as asked for; the daemon's udp.engine line says when it fell back). */
  readonly engine: string;
  /** With baselineEngine: the second relay's figures (`relay` in each is that relay) and relay / baseline. */
  readonly baseline: UdpBaselineFigures | undefined;
}

export interface UdpBaselineFigures {
  readonly engine: string;
  readonly roundTrips: UdpBenchFigure;
  readonly roundTripsManyFlows: UdpBenchFigure;
  readonly datagrams: UdpBenchFigure;
  /** Relay median / baseline median per workload (>1: the relay's engine is ahead). */
  readonly vsBaseline: { readonly roundTrips: number; readonly roundTripsManyFlows: number; readonly datagrams: number };
}

const PORTS = { echoKernel: 7000, echoRelay: 7001, sinkKernel: 7002, sinkRelay: 7003, echoSocks: 7004, echoBaseline: 7005, sinkBaseline: 7006 } as const;
const LISTEN = 8700;
const BASELINE_LISTEN = 8701;

function spread(values: readonly number[]): Spread {
  const s = summarize(values);
  return { median: Math.round(s.median), min: s.min, max: s.max };
}

const machineOf = (runs: readonly Run[]): MachineFigure => {
  const median = (values: readonly number[]): number => Math.round(summarize(values).median * 10) / 10;
  const stage = (pick: (r: Run) => number | undefined): number | undefined => {
    const values = runs.flatMap((r) => (pick(r) === undefined ? [] : [pick(r)!]));
    return values.length > 0 ? median(values) : undefined;
  };
  const client = stage((r) => r.clientMicrosPerUnit);
  const server = stage((r) => r.serverMicrosPerUnit);
  return {
    busy: Math.round(summarize(runs.map((r) => r.busy)).median * 100) / 100,
    cpuMicrosPerUnit: median(runs.map((r) => r.cpuMicrosPerUnit)),
    proxyMicrosPerUnit: median(runs.map((r) => r.proxyMicrosPerUnit)),
    proxySystemMicrosPerUnit: median(runs.map((r) => r.proxySystemMicrosPerUnit)),
    ...(client !== undefined ? { clientMicrosPerUnit: client } : {}),
    ...(server !== undefined ? { serverMicrosPerUnit: server } : {}),
  };
};

function figure(kernel: readonly Run[], relay: readonly Run[]): UdpBenchFigure {
  const k = spread(kernel.map((r) => r.perSecond));
  const r = spread(relay.map((x) => x.perSecond));
  return { kernel: k, relay: r, ratio: k.median > 0 ? Math.round((r.median / k.median) * 100) / 100 : 0, machine: { kernel: machineOf(kernel), relay: machineOf(relay) } };
}

async function lastJson<T>(lab: Lab, argv: readonly string[], timeoutMs: number): Promise<T> {
  const result = await lab.run('client', argv, { timeoutMs });
  return JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as T;
}

/** Run the benchmark on a fresh lab (nothing else running in it); the lab is left to the caller. */
export async function benchUdp(lab: Lab, options: UdpBenchOptions = {}): Promise<UdpBenchResult> {
  const rounds = options.rounds ?? 3;
  const durationMs = options.durationMs ?? 2000;
  const flows = options.flows ?? 4;
  const manyFlows = options.manyFlows ?? 64;
  const size = options.size ?? 64;
  const report = options.report ?? (() => undefined);
  const server = LAB_ADDRESSES.server.ipv4;
  const socks = options.socks ?? true;
  const engines = { engine: options.engine, baselineEngine: options.baselineEngine };
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-bench-udp-'));
  try {
    return await benchIn(lab, dir, { rounds, durationMs, flows, manyFlows, size, report, socks, server, ...engines });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The listener: the relayed ports straight to the server, the SOCKS5 port through danted. */
function relayConfig(socks: boolean, server: string, engine: string | undefined): string {
  const ports = [PORTS.echoRelay, PORTS.sinkRelay, ...(socks ? [PORTS.echoSocks] : [])].join(',');
  return [
    ...(engine !== undefined ? ['udp:', `  engine: ${engine}`] : []),
    'listeners:',
    '  - name: bench',
    `    port: ${LISTEN}`,
    '    families: [4]',
    `    intercept: ["udp:${ports}"]`,
    ...(socks ? ['routes:', `  - { name: via-socks, outbound: socks, ports: [${PORTS.echoSocks}] }`, 'outbounds:', `  - { name: socks, kind: socks5, url: "socks5://${server}:${SOCKS_PORT}" }`] : []),
    'rules:',
    '  table: tproxy_bench',
    '  routeTable: 170',
    '  rulePriority: 9170',
    '',
  ].join('\n');
}

/** The baseline relay: its own listener, ports, table and route table, on `engine`. */
function baselineConfig(engine: string): string {
  return [
    'udp:',
    `  engine: ${engine}`,
    'listeners:',
    '  - name: baseline',
    `    port: ${BASELINE_LISTEN}`,
    '    families: [4]',
    `    intercept: ["udp:${PORTS.echoBaseline},${PORTS.sinkBaseline}"]`,
    'rules:',
    '  table: tproxy_bench_baseline',
    '  routeTable: 171',
    '  rulePriority: 9171',
    // Mark bits of its own: the relay's rules hold 0x1.
    '  fwmark: 0x4',
    '  fwmarkMask: 0x4',
    '',
  ].join('\n');
}

async function benchIn(
  lab: Lab,
  dir: string,
  o: { rounds: number; durationMs: number; flows: number; manyFlows: number; size: number; report: (line: string) => void; socks: boolean; server: string; engine: string | undefined; baselineEngine: string | undefined },
): Promise<UdpBenchResult> {
  const { rounds, durationMs, flows, manyFlows, size, report, socks, server, engine, baselineEngine } = o;
  const base = baselineEngine !== undefined;
  const echoPorts = [PORTS.echoKernel, PORTS.echoRelay, ...(socks ? [PORTS.echoSocks] : []), ...(base ? [PORTS.echoBaseline] : [])].join(',');
  const sink = lab.spawn('server', [process.execPath, LOAD, 'serve', '--echo', echoPorts, '--sink', [PORTS.sinkKernel, PORTS.sinkRelay, ...(base ? [PORTS.sinkBaseline] : [])].join(',')]);
  const sinkLines = new JsonLines<{ event: string; counts?: Record<string, number> }>(sink.child.stdout!);
  await sinkLines.waitFor((l) => l.event === 'ready', 10_000, 'udp-load serve ready');
  if (socks) await startDanted(lab, dir);
  const configFile = join(dir, 'tproxy.yaml');
  writeFileSync(configFile, relayConfig(socks, server, engine));
  const proxy = lab.spawn('router', [process.execPath, BIN, 'run', '--log-format', 'json', '--config', configFile]);
  const proxyLines = new JsonLines<{ type: string; counters?: UdpCounters; engine?: string; why?: string }>(proxy.child.stderr!);
  await proxyLines.waitFor((l) => l.type === 'ready', 15_000, 'tproxy run ready');
  const engineLine = (lines: typeof proxyLines, name: string): void => {
    const line = lines.find((l) => l.type === 'udp.engine');
    if (line) report(`${name}: udp engine ${line.engine ?? '?'} (${line.why ?? ''})`);
  };
  engineLine(proxyLines, 'relay');
  let baselineProxy: ReturnType<typeof lab.spawn> | undefined;
  let baselineLines: typeof proxyLines | undefined;
  if (baselineEngine !== undefined) {
    const file = join(dir, 'baseline.yaml');
    writeFileSync(file, baselineConfig(baselineEngine));
    baselineProxy = lab.spawn('router', [process.execPath, BIN, 'run', '--log-format', 'json', '--config', file]);
    baselineLines = new JsonLines(baselineProxy.child.stderr!);
    try {
      await baselineLines.waitFor((l) => l.type === 'ready', 15_000, 'baseline tproxy run ready');
    } catch (error) {
      baselineProxy.child.kill('SIGTERM');
      throw new Error(`${(error as Error).message}: ${baselineLines.text.filter((l) => !l.includes('udp.stats')).slice(-4).join(' | ')}`, { cause: error });
    }
    engineLine(baselineLines, 'baseline');
  }

  let reports = 0;
  const sinkCount = async (port: number): Promise<number> => {
    const want = ++reports;
    sink.child.stdin?.write('report\n');
    const line = await sinkLines.waitFor((l) => l.event === 'report' && sinkLines.items.filter((x) => x.event === 'report').length >= want, 5000, 'sink report');
    return sinkLines.items.filter((x) => x.event === 'report')[want - 1]?.counts?.[port] ?? line.counts?.[port] ?? 0;
  };
  const limit = durationMs + 15_000;
  const rr = async (port: number, count = flows): Promise<Measured> => {
    const out = await lastJson<{ perSecond: number; userMicros?: number; systemMicros?: number }>(lab, [process.execPath, LOAD, 'rr', server, `${port}`, '--flows', `${count}`, '--duration-ms', `${durationMs}`, '--size', `${size}`], limit);
    return { perSecond: out.perSecond, ...(out.userMicros !== undefined && out.systemMicros !== undefined ? { clientCpuSeconds: (out.userMicros + out.systemMicros) / 1e6 } : {}) };
  };
  const flood = async (port: number): Promise<Measured> => {
    const before = await sinkCount(port);
    const sent = await lastJson<{ durationMs: number }>(lab, [process.execPath, LOAD, 'flood', server, `${port}`, '--duration-ms', `${durationMs}`, '--size', `${size}`], limit);
    await new Promise((r) => setTimeout(r, 200)); // let the queues drain into the sink
    return { perSecond: Math.round(((await sinkCount(port)) - before) * 1000 / sent.durationMs) };
  };

  const rrKernel: Run[] = [];
  const rrRelay: Run[] = [];
  const manyKernel: Run[] = [];
  const manyRelay: Run[] = [];
  const dgKernel: Run[] = [];
  const dgRelay: Run[] = [];
  const rrSocks: Run[] = [];
  const rrBase: Run[] = [];
  const manyBase: Run[] = [];
  const dgBase: Run[] = [];
  for (let round = 1; round <= rounds; round++) {
    // The relay and the baseline alternate which goes first each round.
    const pair = async (relay: () => Promise<void>, baseline: () => Promise<void>): Promise<void> => {
      if (!base || round % 2 === 1) {
        await relay();
        if (base) await baseline();
      } else {
        await baseline();
        await relay();
      }
    };
    rrKernel.push(await withMachine(durationMs, () => rr(PORTS.echoKernel), undefined, sink.child.pid));
    await pair(async () => void rrRelay.push(await withMachine(durationMs, () => rr(PORTS.echoRelay), proxy.child.pid, sink.child.pid)), async () => void rrBase.push(await withMachine(durationMs, () => rr(PORTS.echoBaseline), baselineProxy?.child.pid, sink.child.pid)));
    manyKernel.push(await withMachine(durationMs, () => rr(PORTS.echoKernel, manyFlows), undefined, sink.child.pid));
    await pair(async () => void manyRelay.push(await withMachine(durationMs, () => rr(PORTS.echoRelay, manyFlows), proxy.child.pid, sink.child.pid)), async () => void manyBase.push(await withMachine(durationMs, () => rr(PORTS.echoBaseline, manyFlows), baselineProxy?.child.pid, sink.child.pid)));
    if (socks) rrSocks.push(await withMachine(durationMs, () => rr(PORTS.echoSocks)));
    dgKernel.push(await withMachine(durationMs, () => flood(PORTS.sinkKernel)));
    await pair(async () => void dgRelay.push(await withMachine(durationMs, () => flood(PORTS.sinkRelay), proxy.child.pid)), async () => void dgBase.push(await withMachine(durationMs, () => flood(PORTS.sinkBaseline), baselineProxy?.child.pid)));
    const b = (runs: readonly Run[]): string => (base ? ` baseline ${runs.at(-1)?.perSecond}` : '');
    report(`round ${round}/${rounds}: round trips/s kernel ${rrKernel.at(-1)?.perSecond} relay ${rrRelay.at(-1)?.perSecond}${b(rrBase)}; with ${manyFlows} flows kernel ${manyKernel.at(-1)?.perSecond} relay ${manyRelay.at(-1)?.perSecond}${b(manyBase)}${socks ? `; socks5 ${rrSocks.at(-1)?.perSecond}` : ''}; datagrams/s kernel ${dgKernel.at(-1)?.perSecond} relay ${dgRelay.at(-1)?.perSecond}${b(dgBase)}`);
  }

  proxy.child.kill('SIGTERM');
  await proxy.exited;
  await proxyLines.closed();
  let baselineCounters: UdpCounters | undefined;
  if (baselineProxy && baselineLines) {
    baselineProxy.child.kill('SIGTERM');
    await baselineProxy.exited;
    await baselineLines.closed();
    baselineCounters = baselineLines.find((l) => l.type === 'udp.stats')?.counters;
    if (!baselineCounters || baselineCounters.datagramsFromClients === 0) throw new TproxyError('ERR_PROXY_BYPASSED', 'the baseline relay\'s counters show no datagrams: its figures would be kernel forwarding');
  }
  sink.child.stdin?.end();
  await sink.exited;
  const relayCounters = proxyLines.find((l) => l.type === 'udp.stats')?.counters;
  if (!relayCounters || relayCounters.datagramsFromClients === 0) {
    throw new TproxyError('ERR_PROXY_BYPASSED', 'the relayed runs did not go through the relay (its counters show no datagrams): the figures would compare kernel forwarding with itself');
  }
  if (socks && !(relayCounters.outbounds['socks']?.datagramsFromServers ?? 0)) {
    throw new TproxyError('ERR_PROXY_BYPASSED', 'the SOCKS5 runs brought nothing back through the socks5 outbound (its counters show no datagram from servers): the figure would not measure danted');
  }
  const roundTrips = figure(rrKernel, rrRelay);
  const roundTripsManyFlows = figure(manyKernel, manyRelay);
  const datagrams = figure(dgKernel, dgRelay);
  let baseline: UdpBaselineFigures | undefined;
  if (baselineEngine !== undefined) {
    const bRound = figure(rrKernel, rrBase);
    const bMany = figure(manyKernel, manyBase);
    const bData = figure(dgKernel, dgBase);
    const vs = (a: UdpBenchFigure, b: UdpBenchFigure): number => (b.relay.median > 0 ? Math.round((a.relay.median / b.relay.median) * 100) / 100 : 0);
    baseline = { engine: baselineEngine, roundTrips: bRound, roundTripsManyFlows: bMany, datagrams: bData, vsBaseline: { roundTrips: vs(roundTrips, bRound), roundTripsManyFlows: vs(roundTripsManyFlows, bMany), datagrams: vs(datagrams, bData) } };
  }
  return { rounds, durationMs, flows, manyFlows, size, roundTrips, roundTripsManyFlows, datagrams, socksRoundTrips: socks ? figure(rrRelay, rrSocks) : undefined, relayCounters, engine: engine ?? 'default', baseline };
}

/** The result as a table. */
export function formatUdpBench(result: UdpBenchResult): string {
  const stages = (m: MachineFigure): string => (m.clientMicrosPerUnit !== undefined && m.serverMicrosPerUnit !== undefined ? `; client ${m.clientMicrosPerUnit} us, server ${m.serverMicrosPerUnit} us` : '');
  const relay = (m: MachineFigure): string => (m.proxyMicrosPerUnit > 0 ? `; relay process ${m.proxyMicrosPerUnit} us, ${m.proxySystemMicrosPerUnit} in kernel` : '');
  const machine = (m: MachineFigure): string => `${m.cpuMicrosPerUnit} us (${Math.round(m.busy * 100)}% busy${stages(m)}${relay(m)})`;
  const row = (name: string, f: UdpBenchFigure, [a, b] = ['kernel', 'relay']): string =>
    `${name.padEnd(34)}${`${f.kernel.median}`.padStart(10)}${`${f.relay.median}`.padStart(10)}${`${f.ratio.toFixed(2)}x`.padStart(8)}   ${a} ${f.kernel.min}-${f.kernel.max}, ${b} ${f.relay.min}-${f.relay.max}; machine CPU each: ${a} ${machine(f.machine.kernel)}, ${b} ${machine(f.machine.relay)}`;
  const b = result.baseline;
  return [
    `UDP, ${result.size}-byte datagrams, medians of ${result.rounds} rounds of ${result.durationMs} ms (relay engine: ${result.engine})`,
    `${''.padEnd(34)}${'kernel'.padStart(10)}${'relay'.padStart(10)}${'ratio'.padStart(8)}`,
    row(`round trips/s (${result.flows} flows)`, result.roundTrips),
    row(`round trips/s (${result.manyFlows} flows)`, result.roundTripsManyFlows),
    row('datagrams/s (1 flow, to a sink)', result.datagrams),
    ...(result.socksRoundTrips
      ? [`${''.padEnd(34)}${'direct'.padStart(10)}${'socks5'.padStart(10)}${'ratio'.padStart(8)}`, row(`round trips/s via danted (${result.flows} flows)`, result.socksRoundTrips, ['direct', 'socks5'])]
      : []),
    ...(b
      ? [
          `baseline relay on the ${b.engine} engine, same rounds:`,
          `${''.padEnd(34)}${'kernel'.padStart(10)}${'baseline'.padStart(10)}${'ratio'.padStart(8)}`,
          row(`round trips/s (${result.flows} flows)`, b.roundTrips, ['kernel', 'baseline']),
          row(`round trips/s (${result.manyFlows} flows)`, b.roundTripsManyFlows, ['kernel', 'baseline']),
          row('datagrams/s (1 flow, to a sink)', b.datagrams, ['kernel', 'baseline']),
          `relay (${result.engine}) vs baseline (${b.engine}): round trips ${b.vsBaseline.roundTrips.toFixed(2)}x (${result.flows} flows), ${b.vsBaseline.roundTripsManyFlows.toFixed(2)}x (${result.manyFlows} flows); datagrams/s ${b.vsBaseline.datagrams.toFixed(2)}x`,
        ]
      : []),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, 'duration-ms': { type: 'string', default: '2000' }, flows: { type: 'string', default: '4' }, 'udp-engine': { type: 'string' }, 'baseline-udp-engine': { type: 'string' }, 'no-socks': { type: 'boolean', default: false } } });
  const lab = await Lab.create();
  const interrupt = (): void => {
    lab.destroySync();
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  try {
    const result = await benchUdp(lab, {
      rounds: Number(values.rounds),
      durationMs: Number(values['duration-ms']),
      flows: Number(values.flows),
      socks: !values['no-socks'],
      ...(values['udp-engine'] !== undefined ? { engine: values['udp-engine'] } : {}),
      ...(values['baseline-udp-engine'] !== undefined ? { baselineEngine: values['baseline-udp-engine'] } : {}),
      report: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`${formatUdpBench(result)}\n${JSON.stringify(result)}\n`);
  } finally {
    process.off('SIGINT', interrupt);
    await lab.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench udp: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}

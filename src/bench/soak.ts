/**
 * `npm run soak`: a bounded soak and chaos run of `tproxy run` on the namespace lab, outside the
 * test suite. One daemon (TCP and UDP on one listener, one TCP worker, an admin socket) lives
 * through, in cycles until the time is up:
 *
 *   mixed traffic   TCP echo probes and 40 held TCP connections, 50 UDP flows of 3 round trips
 *   reloads         SIGHUP with a second listener added or removed (rules replaced each time)
 *   chaos           once: the TCP worker killed (SIGKILL); once: a UDP flood of 3,000 new flows
 *                   that never hear back (sessions held until the idle timeout)
 *
 * Every 2 s the daemon's descriptors and memory (RSS) are sampled, and whether its table is in
 * place. At the end it waits for the UDP idle timeout, samples again, stops the daemon and gives a
 * verdict with its reasons: the daemon stayed alive, traffic rounds succeeded (allowing the round
 * the worker was killed in), descriptors and memory came back near the baseline, the rules were in
 * place throughout and gone after the stop. Exit code 0 on pass, 1 on fail.
 *
 * Each round also reads the kernel's UDP counters (/proc/net/snmp) in the three namespaces and
 * names every lost UDP round trip: its client port and round, whether the echo server got it, and
 * with --log-level debug the daemon's sessions of that port. A lost datagram that never reached the
 * server while the router's Udp NoPorts grew was dropped by the router's kernel at delivery (the
 * divert rule matched a reply socket that had changed before the UDP layer looked it up again):
 * such drops are reported on their own and are not the proxy's losses in the verdict.
 *
 * The daemon runs at a descriptor limit of --nofile (default 2048), so the flood reaches its
 * descriptor budget and the least recently active UDP sessions are evicted.
 *
 *   node dist/src/bench/soak.js [--minutes N] [--nofile N] [--out FILE] [--log-level info|debug]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { JsonLines } from '../lab/json-lines.js';
import { LAB_ADDRESSES as A, Lab, type SpawnedProcess } from '../lab/topology.js';
import { parseVmRssBytes } from '../sys/proc-usage.js';
import { isProcessAlive } from '../sys/process.js';

const BIN = fileURLToPath(new URL('../../../bin/tproxy.js', import.meta.url));
const AGENT = fileURLToPath(new URL('../lab/agent.js', import.meta.url));
const UDP_LOAD = fileURLToPath(new URL('../lab/udp-load.js', import.meta.url));
const TCP_HOLD = fileURLToPath(new URL('../lab/tcp-hold.js', import.meta.url));

const UDP_IDLE_MS = 5000;
const SAMPLE_MS = 2000;
const TABLE = 'tproxy_soak';
const RULE_PRIORITY = 9190;

type LogLine = { type: string; [key: string]: unknown };

interface Sample {
  readonly atSeconds: number;
  readonly descriptors: number;
  readonly rssMiB: number;
  readonly rulesInPlace: boolean;
  readonly phase: string;
}

/** The Udp line of /proc/net/snmp of one namespace: the kernel's own UDP drop counters. */
type UdpSnmp = Record<string, number>;

/** A UDP round trip that never came back, and where it was lost. */
interface LostFlow {
  readonly port: number;
  readonly round: number;
  /** When the client sent that round. */
  readonly sentAt: string;
  /** Whether the echo server received the datagram (false: lost between client and server). */
  readonly serverSaw: boolean;
  /** The daemon's session events of that client port (debug log level only). */
  readonly sessions: readonly string[];
}

interface Round {
  readonly cycle: number;
  readonly chaos: string;
  readonly tcpOk: number;
  readonly tcpTotal: number;
  readonly tcpHeld: number;
  readonly udpReplies: number;
  readonly udpExpected: number;
  readonly reloadApplied: boolean;
  /** Increases of the kernel's UDP counters during the round, per namespace (only those that moved). */
  readonly kernelUdp: Readonly<Record<string, UdpSnmp>>;
  readonly lost: readonly LostFlow[];
  /**
   * Lost round trips the router's kernel dropped at delivery (its Udp NoPorts grew, and the
   * datagram never reached the server): the divert rule found a reply socket that was no longer
   * there, or no longer unconnected, when the datagram reached the UDP layer. Counted apart from
   * the proxy's own losses.
   */
  readonly kernelDropped: number;
}

export interface SoakResult {
  readonly minutes: number;
  readonly verdict: 'pass' | 'fail';
  readonly reasons: readonly string[];
  readonly baseline: { readonly descriptors: number; readonly rssMiB: number };
  readonly peak: { readonly descriptors: number; readonly rssMiB: number };
  readonly final: { readonly descriptors: number; readonly rssMiB: number };
  readonly rounds: readonly Round[];
  readonly samples: readonly Sample[];
  readonly counters: unknown;
  readonly exitCode: number | null;
  /** UDP round trips lost in the router's kernel at delivery (see Round.kernelDropped): not in the verdict, always reported. */
  readonly kernelDrops: number;
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;

function usage(pid: number): { descriptors: number; rssMiB: number } {
  try {
    return { descriptors: readdirSync(`/proc/${pid}/fd`).length, rssMiB: mib(parseVmRssBytes(readFileSync(`/proc/${pid}/status`, 'utf8'))) };
  } catch {
    return { descriptors: 0, rssMiB: 0 };
  }
}

function configText(withExtra: boolean, socket: string): string {
  const extra = withExtra ? '  - name: extra\n    port: 8001\n    intercept: [tcp:81]\n' : '';
  return `listeners:\n  - name: main\n    port: 8000\n    intercept: [tcp:80, udp:80, udp:5353]\n    udp: { idleTimeoutMs: ${UDP_IDLE_MS} }\n${extra}rules: { table: ${TABLE}, routeTable: 190, rulePriority: ${RULE_PRIORITY} }\ntcp: { workers: 1 }\nshutdown: { graceMs: 2000 }\nreload: { drainMs: 2000 }\nadmin: { socket: ${socket} }\n`;
}

async function lastJson<T>(lab: Lab, host: 'client' | 'server' | 'router', argv: readonly string[], timeoutMs = 60_000): Promise<T | undefined> {
  const r = await lab.run(host, argv, { check: false, timeoutMs }).catch(() => undefined);
  const text = r?.stdout.trim() ?? '';
  // One JSON document (status --json, pretty-printed) or JSON lines, the last one wanted.
  for (const candidate of [text, text.split('\n').pop() ?? '']) {
    try {
      return JSON.parse(candidate) as T;
    } catch {
      // the next form
    }
  }
  return undefined;
}

/** The kernel's UDP counters (InErrors, RcvbufErrors, NoPorts, ...) of a lab namespace. */
async function udpSnmp(lab: Lab, host: 'client' | 'server' | 'router'): Promise<UdpSnmp> {
  const r = await lab.run(host, ['cat', '/proc/net/snmp'], { check: false, timeoutMs: 10_000 }).catch(() => undefined);
  const lines = (r?.stdout ?? '').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
}

const DROP_COUNTERS = ['InErrors', 'RcvbufErrors', 'SndbufErrors', 'NoPorts', 'InCsumErrors', 'MemErrors'];

function grown(before: UdpSnmp, after: UdpSnmp): UdpSnmp {
  const out: UdpSnmp = {};
  for (const name of DROP_COUNTERS) {
    const d = (after[name] ?? 0) - (before[name] ?? 0);
    if (d > 0) out[name] = d;
  }
  return out;
}

async function rulesInPlace(lab: Lab): Promise<boolean> {
  const r = await lab.run('router', ['nft', 'list', 'tables'], { check: false, timeoutMs: 10_000 }).catch(() => undefined);
  return r?.stdout.includes(TABLE) ?? false;
}

export async function soak(minutes: number, nofile: number, logLevel: 'info' | 'debug' = 'info'): Promise<SoakResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-soak-'));
  const socket = join(dir, 'admin.sock');
  const configFile = join(dir, 'soak.yaml');
  writeFileSync(configFile, configText(false, socket));
  const lab = await Lab.create();
  const reasons: string[] = [];
  const samples: Sample[] = [];
  const rounds: Round[] = [];
  let proxy: SpawnedProcess | undefined;
  try {
    const server = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', '80']);
    const echoed = new JsonLines<{ event: string; message?: string }>(server.child.stdout!);
    await echoed.waitFor((l) => l.event === 'ready', 10_000, 'echo server ready');
    const sink = lab.spawn('server', [process.execPath, UDP_LOAD, 'serve', '--sink', '5353']);
    await new JsonLines<{ event: string }>(sink.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'udp sink ready');
    proxy = lab.spawn('router', ['prlimit', `--nofile=${nofile}:${nofile}`, process.execPath, BIN, 'run', '--config', configFile, '--log-format', 'json', '--log-level', logLevel]);
    const logs = new JsonLines<LogLine>(proxy.child.stderr!);
    const ready = await logs.waitFor((l) => l.type === 'ready', 60_000, 'tproxy run ready');
    const pid = proxy.child.pid ?? 0;
    const started = Date.now();
    const deadline = started + minutes * 60_000;
    let phase = 'warm-up';
    let alive = true;
    const sampler = setInterval(() => {
      alive &&= isProcessAlive(pid);
      const u = usage(pid);
      void rulesInPlace(lab).then((inPlace) => samples.push({ atSeconds: Math.round((Date.now() - started) / 1000), ...u, rulesInPlace: inPlace, phase }));
    }, SAMPLE_MS);

    const hosts = ['client', 'router', 'server'] as const;
    const traffic = async (): Promise<{ tcpOk: number; tcpTotal: number; tcpHeld: number; udpReplies: number; udpExpected: number; kernelUdp: Record<string, UdpSnmp>; lost: LostFlow[]; kernelDropped: number }> => {
      const snmpBefore = await Promise.all(hosts.map((h) => udpSnmp(lab, h)));
      const hold = lab.spawn('client', [process.execPath, TCP_HOLD, A.server.ipv4, '80', '40', '--timeout-ms', '10000']);
      const holdLines = new JsonLines<{ event: string; open?: number }>(hold.child.stdout!);
      const probes = Array.from({ length: 8 }, (_, i) => lab.run('client', [process.execPath, AGENT, 'probe', 'tcp', i % 2 === 0 ? A.server.ipv4 : A.server.ipv6, '80', `soak ${i}`], { check: false, timeoutMs: 20_000 }).then((r) => r.exitCode === 0, () => false));
      const udp = lastJson<{ replies?: number; lost?: { port: number; round: number; message: string; sentAt: string }[] }>(lab, 'client', [process.execPath, AGENT, 'udp-flows', A.server.ipv4, '80', '--count', '50', '--rounds', '3']);
      const held = await holdLines.waitFor((l) => l.event === 'held', 20_000, 'held').then((l) => l.open ?? 0, () => 0);
      const [ok, u] = await Promise.all([Promise.all(probes), udp]);
      hold.child.stdin?.end();
      await hold.exited;
      const snmpAfter = await Promise.all(hosts.map((h) => udpSnmp(lab, h)));
      const kernelUdp: Record<string, UdpSnmp> = {};
      hosts.forEach((h, i) => {
        const d = grown(snmpBefore[i] ?? {}, snmpAfter[i] ?? {});
        if (Object.keys(d).length > 0) kernelUdp[h] = d;
      });
      const lost = (u?.lost ?? []).map((l) => ({
        port: l.port,
        round: l.round,
        sentAt: l.sentAt,
        serverSaw: echoed.items.some((e) => e.event === 'udp' && e.message === l.message),
        sessions: logs.items
          .filter((e) => (e.type === 'udp.session.open' || e.type === 'udp.session.close') && (e.client as { port?: number } | undefined)?.port === l.port)
          .map((e) => `${String(e.time)} ${e.type} id ${String(e.id)}${typeof e.reason === 'string' ? ` (${e.reason})` : ''}`),
      }));
      const kernelDropped = Math.min(lost.filter((l) => !l.serverSaw).length, kernelUdp.router?.NoPorts ?? 0);
      return { tcpOk: ok.filter(Boolean).length, tcpTotal: ok.length, tcpHeld: held, udpReplies: u?.replies ?? 0, udpExpected: 150, kernelUdp, lost, kernelDropped };
    };

    // Warm up, then the baseline (after the UDP sessions of the warm-up expired).
    await traffic();
    await sleep(UDP_IDLE_MS + 1500);
    const baseline = usage(pid);
    say(`soak: daemon pid ${pid}, tcp worker ${JSON.stringify(ready.tcpWorkers)}, baseline ${baseline.descriptors} descriptors, ${baseline.rssMiB} MiB RSS; ${minutes} min`);

    let withExtra = false;
    let killed = false;
    let flooded = false;
    for (let cycle = 1; Date.now() < deadline - 10_000 && alive; cycle++) {
      const elapsed = (Date.now() - started) / (deadline - started);
      let chaos = '';
      if (!killed && elapsed > 0.3) {
        killed = true;
        chaos = 'tcp worker killed';
        const worker = (logs.items.filter((l) => l.type === 'ready').pop()?.tcpWorkers as number[] | undefined)?.[0];
        if (worker) process.kill(worker, 'SIGKILL');
        await logs.waitFor((l) => l.type === 'worker.start' && Number(l.restart) > 0, 15_000, 'worker restarted').catch(() => reasons.push('the killed TCP worker was not replaced within 15 s'));
      } else if (!flooded && elapsed > 0.55) {
        flooded = true;
        chaos = 'udp flood 3000 flows';
        phase = 'flood';
        await lastJson(lab, 'client', [process.execPath, UDP_LOAD, 'spray', A.server.ipv4, '5353', '--sources', '3000']);
      }
      phase = chaos ? phase : 'traffic';
      withExtra = !withExtra;
      writeFileSync(configFile, configText(withExtra, socket));
      const reloadsBefore = logs.items.filter((l) => l.type === 'reload.applied').length;
      proxy.child.kill('SIGHUP');
      const t = await traffic();
      const reloadApplied = await logs.waitFor(() => logs.items.filter((l) => l.type === 'reload.applied').length > reloadsBefore, 15_000, 'reload').then(
        () => true,
        () => false,
      );
      rounds.push({ cycle, chaos, ...t, reloadApplied });
      const kernel = Object.entries(t.kernelUdp).map(([h, d]) => `${h} ${Object.entries(d).map(([k, v]) => `${k} +${v}`).join(' ')}`);
      say(`  cycle ${cycle}${chaos ? ` [${chaos}]` : ''}: tcp ${t.tcpOk}/${t.tcpTotal} probes, ${t.tcpHeld}/40 held; udp ${t.udpReplies}/${t.udpExpected}; reload ${reloadApplied ? 'applied' : 'NOT applied'}; ${usage(pid).descriptors} fds${kernel.length ? `; kernel udp: ${kernel.join('; ')}` : ''}`);
      for (const l of t.lost) say(`    lost: client port ${l.port} round ${l.round} sent ${l.sentAt}, ${l.serverSaw ? 'reached the server' : 'never reached the server'}${l.sessions.length ? `; sessions: ${l.sessions.join(', ')}` : ''}`);
      phase = 'traffic';
    }
    phase = 'idle';
    // Every UDP session of the flood and the traffic ends within the idle timeout (+ a tenth).
    await sleep(UDP_IDLE_MS + 2500);
    const final = usage(pid);
    clearInterval(sampler);
    alive &&= isProcessAlive(pid);
    const status = await lastJson<{ listeners?: { counters?: unknown }[] }>(lab, 'router', [process.execPath, BIN, 'status', '--socket', socket, '--json'], 20_000).catch(() => undefined);
    const inPlaceAtEnd = await rulesInPlace(lab);
    proxy.child.kill('SIGTERM');
    const exitCode = await proxy.exited;
    const tablesAfter = (await lab.run('router', ['nft', 'list', 'tables'], { check: false })).stdout.trim();
    const ipRulesAfter = (await lab.run('router', ['ip', '-4', 'rule'], { check: false })).stdout;

    const peak = { descriptors: Math.max(baseline.descriptors, ...samples.map((s) => s.descriptors)), rssMiB: Math.max(baseline.rssMiB, ...samples.map((s) => s.rssMiB)) };
    if (!alive) reasons.push('the daemon died');
    if (exitCode !== 0) reasons.push(`tproxy run exited with ${exitCode} at SIGTERM`);
    // The round the worker was killed in may lose its held connections and a probe; every other round must be whole.
    // Round trips the router's kernel dropped are counted apart (kernelDrops), not as the proxy's losses.
    const bad = rounds.filter((r) => r.chaos !== 'tcp worker killed' && (r.tcpOk < r.tcpTotal || r.udpReplies + r.kernelDropped < r.udpExpected || r.tcpHeld < 40));
    if (bad.length > 0) reasons.push(`${bad.length} of ${rounds.length} traffic rounds lost flows (cycles ${bad.map((r) => r.cycle).join(', ')})`);
    if (rounds.some((r) => !r.reloadApplied)) reasons.push('a reload was not applied');
    if (rounds.length < 3) reasons.push(`only ${rounds.length} cycles ran: give it more minutes`);
    if (final.descriptors > baseline.descriptors + 4) reasons.push(`descriptors ${final.descriptors} at the end, ${baseline.descriptors} at the baseline`);
    if (final.rssMiB > Math.max(baseline.rssMiB * 1.5, baseline.rssMiB + 48)) reasons.push(`RSS ${final.rssMiB} MiB at the end, ${baseline.rssMiB} MiB at the baseline`);
    if (samples.some((s) => !s.rulesInPlace) || !inPlaceAtEnd) reasons.push(`the table was missing in ${samples.filter((s) => !s.rulesInPlace).length} of ${samples.length} samples`);
    if (tablesAfter !== '' || ipRulesAfter.includes(String(RULE_PRIORITY))) reasons.push('rules were left after the stop');
    return {
      minutes,
      verdict: reasons.length === 0 ? 'pass' : 'fail',
      reasons,
      baseline,
      peak,
      final,
      rounds,
      samples,
      counters: status?.listeners?.map((l) => l.counters) ?? null,
      exitCode,
      kernelDrops: rounds.reduce((n, r) => n + r.kernelDropped, 0),
    };
  } finally {
    if (proxy && proxy.child.exitCode === null) proxy.child.kill('SIGKILL');
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '3' }, nofile: { type: 'string', default: '2048' }, out: { type: 'string' }, 'log-level': { type: 'string', default: 'info' } }, strict: true });
  const minutes = Number(values.minutes);
  if (!Number.isFinite(minutes) || minutes < 0.5 || minutes > 120) {
    process.stderr.write('soak: --minutes must be from 0.5 to 120\n');
    return 2;
  }
  const nofile = Number(values.nofile);
  if (!Number.isInteger(nofile) || nofile < 512) {
    process.stderr.write('soak: --nofile must be an integer of at least 512\n');
    return 2;
  }
  const logLevel = values['log-level'];
  if (logLevel !== 'info' && logLevel !== 'debug') {
    process.stderr.write('soak: --log-level must be info or debug (debug: each lost round trip is shown with its sessions)\n');
    return 2;
  }
  const result = await soak(minutes, nofile, logLevel);
  if (values.out) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  say(`\nbaseline ${result.baseline.descriptors} descriptors / ${result.baseline.rssMiB} MiB; peak ${result.peak.descriptors} / ${result.peak.rssMiB} MiB; final ${result.final.descriptors} / ${result.final.rssMiB} MiB (daemon process)`);
  say(`${result.rounds.length} cycles, ${result.samples.length} samples, exit code at SIGTERM ${result.exitCode}`);
  const udp = (result.counters as { udp?: { sessionsCreated: number; sessionsEvicted: number; sessionsEvictedForDescriptors: number; sessionsExpired: number } }[] | null)?.[0]?.udp;
  if (udp) say(`udp sessions: ${udp.sessionsCreated} opened, ${udp.sessionsEvictedForDescriptors} evicted at the descriptor budget, ${udp.sessionsExpired} expired`);
  if (result.kernelDrops > 0) say(`udp round trips dropped by the router's kernel at delivery (Udp NoPorts, never reached the server): ${result.kernelDrops}; not counted as the proxy's losses`);
  say(`verdict: ${result.verdict.toUpperCase()}${result.reasons.length ? `\n  ${result.reasons.join('\n  ')}` : ''}`);
  return result.verdict === 'pass' ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`soak: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}

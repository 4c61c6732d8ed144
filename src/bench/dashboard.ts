/**
 * What an open dashboard costs the daemon: `tproxy run` with the dashboard enabled relays a
 * connection churn (wrk, Connection: close, through the proxy to nginx), once with no page
 * connected and once with one (an event-stream client in the router's namespace, reading and
 * dropping every change), alternating round by round in one run. The figure is the daemon's CPU
 * (its process and its TCP workers, utime + stime) per 1,000 connections relayed, so a round that
 * relayed more is not taken for a costlier one; the ratio with / without is the dashboard's cost.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonLines } from '../lab/json-lines.js';
import { LAB_ADDRESSES, type Lab, type SpawnedProcess } from '../lab/topology.js';
import { processTree, usageOf } from '../sys/proc-usage.js';
import { HTTP_PORT } from './servers.js';
import { formatColumns, parseWrk, summarize, type Summary } from './stats.js';

const BIN = fileURLToPath(new URL('../../../bin/tproxy.js', import.meta.url));
const LISTEN_PORT = 8004;
const DASHBOARD_PORT = 9475;

export interface DashboardBenchOptions {
  readonly rounds?: number;
  readonly durationMs?: number;
  readonly connections?: number;
  readonly report?: (line: string) => void;
}

export interface DashboardBenchResult {
  /** Daemon CPU seconds per 1,000 connections, without and with one page connected. */
  readonly cpuPerThousand: { readonly none: Summary; readonly one: Summary };
  readonly connectionsPerSecond: { readonly none: Summary; readonly one: Summary };
  /** one / none of the CPU medians: 1.05 is 5% more CPU with the page open. */
  readonly ratio: number;
  /** Flow changes the page received in its rounds (proves it was fed). */
  readonly changesSeen: number;
}

const CONFIG = `listeners:
  - name: bench
    port: ${LISTEN_PORT}
    families: [4]
    intercept: ["tcp:${HTTP_PORT}"]
rules: { table: tproxy_dashbench, routeTable: 134, rulePriority: 9134 }
metrics: { listen: "127.0.0.1:${DASHBOARD_PORT}" }
dashboard: { enabled: true }
`;

/** The page's part: connect to the event stream, count the flow changes, print the count on SIGTERM. */
const PAGE = `
const http = require('node:http');
let changes = 0;
let buffer = '';
http.get({ host: '127.0.0.1', port: ${DASHBOARD_PORT}, path: '/api/events' }, (res) => {
  res.setEncoding('utf8');
  res.on('data', (d) => {
    buffer += d;
    let at;
    while ((at = buffer.indexOf('\\n\\n')) >= 0) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (block.startsWith('event: flows')) changes += JSON.parse(block.slice(block.indexOf('data: ') + 6)).length;
      if (block.startsWith('event: state')) process.stdout.write(JSON.stringify({ event: 'connected' }) + '\\n');
    }
  });
});
process.on('SIGTERM', () => { process.stdout.write(JSON.stringify({ event: 'done', changes }) + '\\n'); process.exit(0); });
`;

export async function benchDashboard(lab: Lab, options: DashboardBenchOptions = {}): Promise<DashboardBenchResult> {
  const rounds = options.rounds ?? 3;
  const seconds = Math.max(1, Math.round((options.durationMs ?? 5000) / 1000));
  const report = options.report ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-bench-dashboard-'));
  const config = join(dir, 'tproxy.yaml');
  writeFileSync(config, CONFIG);
  const daemon = lab.spawn('router', [process.execPath, BIN, 'run', '--config', config, '--log-format', 'json']);
  const samples = { none: [] as number[], one: [] as number[] };
  const rates = { none: [] as number[], one: [] as number[] };
  let changesSeen = 0;
  try {
    await new JsonLines<{ type: string }>(daemon.child.stderr!).waitFor((l) => l.type === 'ready', 30_000, 'the proxy with the dashboard starting');
    const pids = (): number[] => processTree(daemon.child.pid ?? -1);
    // Connection churn: without reuse, the client's ports sit in TIME_WAIT and later rounds stall
    // (in the lab's namespaces only; each round takes its own port range, as the main bench does).
    await lab.run('client', ['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
    await lab.run('router', ['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=10000 65000']);
    let range = 0;
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first: drift in the machine's load falls on both alike.
      for (const mode of round % 2 === 0 ? (['none', 'one'] as const) : (['one', 'none'] as const)) {
        let page: SpawnedProcess | undefined;
        let pageLines: JsonLines<{ event: string; changes?: number }> | undefined;
        if (mode === 'one') {
          page = lab.spawn('router', [process.execPath, '-e', PAGE]);
          pageLines = new JsonLines(page.child.stdout!);
          await pageLines.waitFor((l) => l.event === 'connected', 10_000, 'the page connecting');
        }
        const from = 10_000 + (range++ % 10) * 5_000;
        await lab.run('client', ['sysctl', '-q', '-w', `net.ipv4.ip_local_port_range=${from} ${from + 4_999}`]);
        const before = usageOf(pids());
        const out = await lab.run('client', ['wrk', '-t1', `-c${options.connections ?? 20}`, `-d${seconds}s`, '-H', 'Connection: close', `http://${LAB_ADDRESSES.server.ipv4}:${HTTP_PORT}/`], { timeoutMs: (seconds + 30) * 1000 });
        const after = usageOf(pids());
        const wrk = parseWrk(out.stdout);
        const cpu = ((after.cpuSeconds - before.cpuSeconds) / Math.max(1, wrk.requests)) * 1000;
        samples[mode].push(cpu);
        rates[mode].push(wrk.requestsPerSecond);
        if (page && pageLines) {
          page.child.kill('SIGTERM');
          const done = await pageLines.waitFor((l) => l.event === 'done', 10_000, 'the page reporting');
          changesSeen += done.changes ?? 0;
        }
        report(`round ${round + 1} ${mode === 'none' ? 'no page' : 'one page'}: ${wrk.requestsPerSecond.toFixed(0)} conn/s, daemon CPU ${cpu.toFixed(4)} s per 1k connections`);
      }
    }
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    rmSync(dir, { recursive: true, force: true });
  }
  const none = summarize(samples.none);
  const one = summarize(samples.one);
  return { cpuPerThousand: { none, one }, connectionsPerSecond: { none: summarize(rates.none), one: summarize(rates.one) }, ratio: one.median / none.median, changesSeen };
}

export function formatDashboardBench(r: DashboardBenchResult): string {
  const fmt = (s: Summary, digits: number): string => `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}-${s.max.toFixed(digits)}]`;
  return `${formatColumns([
    ['dashboard', 'no page', 'one page (event stream)', 'one / none'],
    ['daemon CPU s per 1k connections', fmt(r.cpuPerThousand.none, 4), fmt(r.cpuPerThousand.one, 4), `${r.ratio.toFixed(3)}x`],
    ['connections/s', fmt(r.connectionsPerSecond.none, 0), fmt(r.connectionsPerSecond.one, 0), ''],
  ])}\n(the page received ${r.changesSeen} flow changes)\n`;
}

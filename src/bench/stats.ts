/** Parsing benchmark tools' output and summarising rounds. Pure. */
import { TproxyError } from '../core/errors.js';

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly samples: readonly number[];
}

/** Rows as left-aligned columns two spaces apart (the first row is the header). */
export function formatColumns(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')).join('\n');
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) return { median: NaN, min: NaN, max: NaN, samples };
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
  return { median, min: sorted[0] ?? NaN, max: sorted[sorted.length - 1] ?? NaN, samples };
}

/** Received throughput in bits per second from `iperf3 -J` output. */
export function parseIperf3(json: string): number {
  return parseIperf3Received(json).bitsPerSecond;
}

/** Received throughput and bytes from `iperf3 -J` output. */
export function parseIperf3Received(json: string): { bitsPerSecond: number; bytes: number; cpuSeconds?: { client: number; server: number } } {
  const parsed = JSON.parse(json) as {
    error?: string;
    end?: { sum_received?: { bits_per_second?: number; bytes?: number; seconds?: number }; cpu_utilization_percent?: { host_total?: number; remote_total?: number } };
  };
  if (parsed.error) throw new TproxyError('ERR_COMMAND_FAILED', `iperf3: ${parsed.error}`);
  const bps = parsed.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new TproxyError('ERR_COMMAND_FAILED', 'iperf3 output has no end.sum_received.bits_per_second');
  // iperf3's own CPU use (user + system, percent of one CPU over the test) of the client (host)
  // and the server (remote): the two endpoint stages' cost, whatever else runs on the machine.
  const cpu = parsed.end?.cpu_utilization_percent;
  const seconds = parsed.end?.sum_received?.seconds;
  const cpuSeconds = typeof cpu?.host_total === 'number' && typeof cpu.remote_total === 'number' && typeof seconds === 'number' ? { client: (cpu.host_total / 100) * seconds, server: (cpu.remote_total / 100) * seconds } : undefined;
  return { bitsPerSecond: bps, bytes: parsed.end?.sum_received?.bytes ?? 0, ...(cpuSeconds ? { cpuSeconds } : {}) };
}

export interface WrkResult {
  readonly requestsPerSecond: number;
  /** Requests completed in the whole run. */
  readonly requests: number;
  /** Latency percentiles in milliseconds (with --latency). */
  readonly latencyMs: Readonly<Record<string, number>>;
  readonly errors: number;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

/** Requests per second, latency percentiles and socket errors from wrk's text output. */
export function parseWrk(text: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!rps) throw new TproxyError('ERR_COMMAND_FAILED', `wrk output has no Requests/sec line: ${text.slice(0, 200)}`);
  const latencyMs: Record<string, number> = {};
  for (const m of text.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$/gm)) latencyMs[`p${m[1]}`] = toMs(m[2] ?? '0', m[3] ?? 'ms');
  const errorsLine = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = errorsLine ? errorsLine.slice(1).reduce((n, v) => n + Number(v), 0) : 0;
  const requests = /^\s*(\d+) requests in /m.exec(text);
  if (!requests) throw new TproxyError('ERR_COMMAND_FAILED', `wrk output has no "N requests in" line: ${text.slice(0, 200)}`);
  return { requestsPerSecond: Number(rps[1]), requests: Number(requests[1]), latencyMs, errors };
}

/**
 * The route decision as a microbenchmark (no root, no lab): a listener's table with 10,000
 * destination prefixes and 1,000 name suffixes, against the same listener without routes, and the
 * one-time cost of compiling it. Random but seeded flows, so runs repeat.
 *
 *   node dist/src/bench/route.js [--prefixes N] [--suffixes N] [--rounds N]
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { RouteSpec, RoutingConfig } from '../core/route/config.js';
import { type RouteFlow, RouteTable } from '../core/route/table.js';
import { formatColumns, summarize, type Summary } from './stats.js';

export interface RouteBenchResult {
  readonly prefixes: number;
  readonly suffixes: number;
  /** Nanoseconds per decision: decideUnnamed, then decide with the flow's name when it says sniff (what the data plane does). */
  readonly withRoutesNs: Summary;
  /** Nanoseconds per decision of a listener without routes (its default outbound). */
  readonly withoutRoutesNs: Summary;
  readonly compileMs: Summary;
}

/** A small seeded generator (mulberry32): the same flows every run. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const route = (name: string, outbound: string, match: Partial<RouteSpec>): RouteSpec => ({ name, outbound, destinations: [], destinationLists: [], sources: [], sourceLists: [], ports: [], protocols: [], listeners: [], names: [], nameLists: [], ...match });

function ipv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** `count` random IPv4 prefixes of /16 to /24 (a country's list). */
export function randomPrefixes(count: number, next: () => number): string[] {
  return Array.from({ length: count }, () => {
    const len = 16 + Math.floor(next() * 9);
    const n = (Math.floor(next() * 2 ** 32) & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
    return `${ipv4(n)}/${len}`;
  });
}

/** The table of the bench: lan first, then names, then 10,000 prefixes (a country's list), then ports. */
export function benchRouting(prefixes: number, suffixes: number, next: () => number): RoutingConfig {
  const list = randomPrefixes(prefixes, next);
  const names = Array.from({ length: suffixes }, (_, i) => `.s${i}.example`);
  const direct = { name: 'direct', kind: 'direct' } as const;
  const reject = { name: 'reject', kind: 'reject' } as const;
  return {
    listener: 'bench',
    defaultOutbound: { name: 'corp', kind: 'socks5', proxy: { protocol: 'socks5', endpoint: { family: 4, address: '192.0.2.7', port: 1080 } } },
    outbounds: [direct, reject],
    lists: [
      { name: 'country', kind: 'prefixes', entries: list },
      { name: 'ads', kind: 'names', entries: names },
    ],
    routes: [
      route('lan', 'direct', { destinations: ['10.0.0.0/8', '192.168.0.0/16', 'fd00::/8'] }),
      route('ads', 'reject', { nameLists: ['ads'] }),
      route('country', 'direct', { destinationLists: ['country'] }),
      route('smtp', 'reject', { ports: [{ from: 25, to: 25 }, { from: 465, to: 465 }], protocols: ['tcp'] }),
    ],
  };
}

function flows(count: number, suffixes: number, next: () => number): RouteFlow[] {
  return Array.from({ length: count }, () => {
    const named = next() < 0.5;
    return {
      protocol: 'tcp',
      source: ipv4(0xc6336400 + Math.floor(next() * 256)),
      destination: ipv4(Math.floor(next() * 2 ** 32)),
      destinationPort: next() < 0.1 ? 25 : 443,
      ...(named ? { name: next() < 0.5 ? `www.s${Math.floor(next() * suffixes)}.example` : `www.n${Math.floor(next() * 10_000)}.example` } : {}),
    };
  });
}

/** ns per decision over `flows`, best-effort steady state (a warm-up pass first). */
function timeDecisions(table: RouteTable, sample: readonly RouteFlow[], passes: number): number {
  let sink = 0;
  const run = (): void => {
    for (const f of sample) {
      const first = table.decideUnnamed(f);
      const d = first === 'sniff' ? table.decide(f) : first;
      sink += d.index ?? -1;
    }
  };
  // Warm-up: let the JIT reach its optimised tier before timing.
  for (let i = 0; i < Math.max(5, passes / 5); i++) run();
  // CPU time of this process, not wall time: on a shared machine the wall clock also counts the
  // time other processes held the core.
  const start = process.cpuUsage();
  for (let i = 0; i < passes; i++) run();
  const used = process.cpuUsage(start);
  const ns = (used.user + used.system) * 1000;
  if (sink === 0.5) process.stdout.write(''); // keep the work observable
  return ns / (passes * sample.length);
}

export function benchRoute(options: { prefixes?: number; suffixes?: number; rounds?: number } = {}): RouteBenchResult {
  const prefixes = options.prefixes ?? 10_000;
  const suffixes = options.suffixes ?? 1_000;
  const rounds = options.rounds ?? 5;
  const next = random(15);
  const config = benchRouting(prefixes, suffixes, next);
  const sample = flows(4096, suffixes, next);
  const compile: number[] = [];
  let table = RouteTable.compile(config);
  for (let i = 0; i < rounds; i++) {
    const start = process.hrtime.bigint();
    table = RouteTable.compile(config);
    compile.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const empty = RouteTable.compile({ ...config, routes: [], lists: [] });
  const withRoutes: number[] = [];
  const withoutRoutes: number[] = [];
  // Interleaved rounds: both tables share the machine's conditions.
  for (let i = 0; i < rounds; i++) {
    withRoutes.push(timeDecisions(table, sample, 50));
    withoutRoutes.push(timeDecisions(empty, sample, 50));
  }
  return { prefixes, suffixes, withRoutesNs: summarize(withRoutes), withoutRoutesNs: summarize(withoutRoutes), compileMs: summarize(compile) };
}

export function formatRouteBench(r: RouteBenchResult): string {
  const cell = (s: Summary, digits: number): string => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
  return [
    `route decision: ${r.prefixes.toLocaleString('en')} prefixes + ${r.suffixes.toLocaleString('en')} name suffixes (median, min-max of ${r.withRoutesNs.samples.length} rounds)`,
    formatColumns([
      ['', 'CPU ns per decision', 'vs no routes'],
      ['with routes', cell(r.withRoutesNs, 0), `${(r.withRoutesNs.median / r.withoutRoutesNs.median).toFixed(1)}x`],
      ['without routes', cell(r.withoutRoutesNs, 0), '1.0x'],
    ]),
    `compiling the table once: ${cell(r.compileMs, 1)} ms`,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { prefixes: { type: 'string' }, suffixes: { type: 'string' }, rounds: { type: 'string' } } });
  const result = benchRoute({
    ...(values.prefixes ? { prefixes: Number(values.prefixes) } : {}),
    ...(values.suffixes ? { suffixes: Number(values.suffixes) } : {}),
    ...(values.rounds ? { rounds: Number(values.rounds) } : {}),
  });
  process.stdout.write(`${formatRouteBench(result)}\n`);
}

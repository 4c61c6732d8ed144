/** Traffic helpers for namespace tests: the echo server, a proxy without rules, probes, counters. */
import { JsonLines } from '../../src/lab/json-lines.js';
import type { HostName, Lab, SpawnedProcess } from '../../src/lab/topology.js';
import type { RulesStatus } from '../../src/control/apply.js';
import { AGENT, BIN } from './paths.js';

export interface ProbeResult {
  readonly ok: boolean;
  readonly reason?: string;
  readonly from?: { address: string; port: number };
  readonly local?: { address: string; port: number };
  readonly reply?: { seen: { address: string; port: number }; message: string };
}

export interface ProxyLine {
  readonly type: string;
  readonly client?: { address: string; port: number };
  readonly originalDestination?: { address: string; port: number };
  readonly replaced?: { owner?: number; stale: boolean };
}

export async function startEchoServer(lab: Lab): Promise<SpawnedProcess> {
  const server = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', '80']);
  await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'echo server ready');
  return server;
}

/** `tproxy run` in the router with `args`; resolves once it is ready. */
export async function startProxy(lab: Lab, args: readonly string[]): Promise<{ process: SpawnedProcess; lines: JsonLines<ProxyLine> }> {
  const spawned = lab.spawn('router', [process.execPath, BIN, 'run', ...args, '--log-level', 'debug', '--log-format', 'json']);
  const lines = new JsonLines<ProxyLine>(spawned.child.stderr!);
  await lines.waitFor((l) => l.type === 'ready', 60_000, `tproxy run ${args.join(' ')} ready`);
  return { process: spawned, lines };
}

export async function probe(lab: Lab, from: HostName, transport: 'tcp' | 'udp', address: string, message: string, timeoutMs = 3000): Promise<ProbeResult> {
  const result = await lab.run(from, [process.execPath, AGENT, 'probe', transport, address, '80', message, '--timeout-ms', `${timeoutMs}`], { check: false });
  return JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as ProbeResult;
}

/** Packets counted by each piece that has a counter. */
export function packets(status: RulesStatus): Record<string, number> {
  return Object.fromEntries(status.pieces.filter((p) => p.counter).map((p) => [p.name, p.counter?.packets ?? 0]));
}

/** Pieces that are not in place, as "state name". */
export function notInPlace(status: RulesStatus): string[] {
  return status.pieces.filter((p) => p.state !== 'in place').map((p) => `${p.state} ${p.name}`);
}

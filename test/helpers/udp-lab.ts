/** Shared steps of the UDP namespace tests: the proxy, the agents, and reading what they print. */
import type { UdpEngineKind } from '../../src/sys/datagram-io.js';
import type { UdpCounters } from '../../src/dataplane/udp/counters.js';
import { JsonLines } from '../../src/lab/json-lines.js';
import { after, before } from 'node:test';
import { Lab, untilReady, type HostName, type SpawnedProcess } from '../../src/lab/topology.js';
import { AGENT, BIN } from './paths.js';

const RELAY_HOST = new URL('./udp-relay-host.js', import.meta.url).pathname;

export interface LogLine {
  type: string;
  reason?: string;
  id?: number;
  client?: { address: string; port: number };
  originalDestination?: { address: string; port: number };
  upstreamLocal?: { address: string; port: number };
  counters?: UdpCounters;
  [key: string]: unknown;
}

export interface RunningProxy {
  readonly lines: JsonLines<LogLine>;
  readonly process: SpawnedProcess;
  /** SIGTERM, wait for the exit, and return the final UDP counters. */
  stop(): Promise<UdpCounters>;
  /** SIGTERM unless it already exited, and wait for the exit (a test's cleanup: its rules go, the next test can apply its own). */
  kill(): Promise<void>;
}

/** `tproxy run` with its own rules in the router namespace (JSON log lines on stderr). */
/** `tproxy run` in the router with `args`; `engine`: its UDP engine (--udp-engine; default the configuration's). */
export async function startProxy(lab: Lab, args: readonly string[], engine?: UdpEngineKind): Promise<RunningProxy> {
  const proc = lab.spawn('router', [process.execPath, BIN, 'run', '--log-format', 'json', '--log-level', 'debug', ...args, ...(engine ? ['--udp-engine', engine] : [])]);
  const lines = new JsonLines<LogLine>(proc.child.stderr!);
  await untilReady(proc, lines.waitFor((l) => l.type === 'ready', 60_000, 'tproxy run ready'));
  if (engine === 'uring') {
    // The engine asked for is the one tested: a fallback to epoll would test that engine twice.
    const line = lines.find((l) => l.type === 'udp.engine');
    if (line?.['engine'] !== 'uring') {
      proc.child.kill('SIGTERM');
      await proc.exited;
      throw new Error(`asked for --udp-engine uring, the daemon runs ${JSON.stringify(line?.['engine'] ?? 'epoll')}: ${JSON.stringify(line?.['why'] ?? 'no udp.engine line')}`);
    }
  }
  return {
    lines,
    process: proc,
    async stop() {
      proc.child.kill('SIGTERM');
      const code = await proc.exited;
      await lines.closed();
      if (code !== 0) throw new Error(`tproxy run exited with ${code}: ${lines.text.slice(-3).join(' | ')}`);
      const stats = lines.find((l) => l.type === 'udp.stats');
      if (!stats?.counters) throw new Error('tproxy run reported no udp.stats');
      return stats.counters;
    },
    async kill() {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGTERM');
      await proc.exited;
    },
  };
}

/** Run the agent to completion in `host`; its last JSON line. */
export async function agent<T>(lab: Lab, host: HostName, args: readonly string[]): Promise<T> {
  const result = await lab.run(host, [process.execPath, AGENT, ...args], { check: false, timeoutMs: 60_000 });
  const last = result.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`agent ${args.join(' ')} printed no JSON (exit ${result.exitCode}): ${result.stderr.slice(0, 500)}`);
  }
}

/** A long-running agent whose JSON lines on stdout can be awaited; stdin takes commands. */
export function spawnAgent<T = Record<string, unknown>>(lab: Lab, host: HostName, args: readonly string[]): { proc: SpawnedProcess; lines: JsonLines<T>; send(line: string): void } {
  const proc = lab.spawn(host, [process.execPath, AGENT, ...args]);
  return { proc, lines: new JsonLines<T>(proc.child.stdout!), send: (line) => proc.child.stdin?.write(`${line}\n`) };
}

export async function startEchoServer(lab: Lab, port = 80, rawPort?: number): Promise<void> {
  const args = ['serve', '--port', `${port}`, ...(rawPort === undefined ? [] : ['--raw-port', `${rawPort}`])];
  const server = lab.spawn('server', [process.execPath, AGENT, ...args]);
  await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'echo server ready');
}

/**
 * The lab of one suite (call inside describe()): made before its tests with the echo server
 * running and `rules` applied in the router (`tproxy rules apply`), destroyed after them.
 */
export function echoLabPerSuite(rules: readonly string[]): { readonly lab: Lab } {
  let lab: Lab | undefined;
  before(async () => {
    lab = await Lab.create();
    await startEchoServer(lab);
    await lab.run('router', [process.execPath, BIN, 'rules', 'apply', ...rules]);
  });
  after(() => lab?.destroy());
  return {
    get lab(): Lab {
      if (!lab) throw new Error('the suite\'s lab is made in before()');
      return lab;
    },
  };
}

/** The test relay host (udp-relay-host.ts: a UdpRelay with its test seam) in the router with `config`, once ready. */
export async function startRelayHost<L extends { type: string }>(lab: Lab, config: object): Promise<{ relay: SpawnedProcess; events: JsonLines<L> }> {
  const relay = lab.spawn('router', [process.execPath, RELAY_HOST, JSON.stringify(config)]);
  const events = new JsonLines<L>(relay.child.stdout!);
  await events.waitFor((l) => l.type === 'ready', 10_000, 'relay ready');
  return { relay, events };
}

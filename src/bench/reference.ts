/**
 * The C reference relay (`--reference-relay threads|epoll`, source src/bench/reference-relay.c):
 * a minimal transparent splice relay run on the router in place of tproxy, measured in the same
 * rounds, so the stream workloads show what a relay in user space can reach on this lab at all.
 * Compiled with `cc` into the run's scratch directory (gcc installed from apt when missing).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_LISTENER_RULES } from '../core/rules/config.js';
import { TproxyError } from '../core/errors.js';
import type { Lab, SpawnedProcess } from '../lab/topology.js';
import type { CommandRunner } from '../sys/exec.js';
import { ensureTools } from './tools.js';

/** threads: a blocking thread per direction; epoll: one thread, non-blocking splice (tproxy's design). */
export const REFERENCE_MODES = ['threads', 'epoll'] as const;
export type ReferenceMode = (typeof REFERENCE_MODES)[number];

/** The C source, in the source tree beside this file's TypeScript (the bench runs from dist/). */
const SOURCE = fileURLToPath(new URL('../../../src/bench/reference-relay.c', import.meta.url));

export function parseReferenceMode(value: string): ReferenceMode {
  const mode = REFERENCE_MODES.find((m) => m === value);
  if (!mode) throw new TproxyError('ERR_INVALID_ARGUMENT', `--reference-relay takes ${REFERENCE_MODES.join(' or ')}, not '${value}'`);
  return mode;
}

/** Compile the relay into `dir`; returns the binary's path. */
export async function buildReferenceRelay(dir: string, runner: CommandRunner, say: (line: string) => void): Promise<string> {
  await ensureTools(['cc'], runner, say);
  const binary = join(dir, 'reference-relay');
  await runner.run(['cc', '-O2', '-Wall', '-pthread', '-o', binary, SOURCE], { timeoutMs: 60_000 });
  return binary;
}

/** The relay on the router, listening on `port`, its upstream sockets marked as tproxy's are. */
export function startReferenceRelay(lab: Lab, binary: string, port: number, mode: ReferenceMode): SpawnedProcess {
  return lab.spawn('router', [binary, `${port}`, `${DEFAULT_LISTENER_RULES.upstreamMark}`, mode]);
}

/**
 * How many flows a process can hold: the descriptors of one flow (client and upstream sockets,
 * plus two pipes for the splice engine) and a reserve for the runtime, listeners and IPC. Capping
 * below the descriptor limit means accepting pauses before accept() can fail with EMFILE. Pure.
 */
import type { TcpEngineKind } from './engines.js';

export const RESERVED_DESCRIPTORS = 64;

export function descriptorsPerFlow(engine: TcpEngineKind): number {
  return engine === 'splice' ? 6 : 2;
}

export function connectionCap(requested: number, softFileLimit: number, perFlow = 2): number {
  return Math.max(1, Math.min(requested, Math.floor((softFileLimit - RESERVED_DESCRIPTORS) / perFlow)));
}

/** The connection cap in force and why: what status, the metrics and doctor report. */
export interface TcpCapacity {
  /** maxConnections as configured (per worker). */
  readonly configured: number;
  /** The cap each worker applies. */
  readonly perWorker: number;
  /** `descriptors`: the file limit lowered it below the configured value. */
  readonly limitedBy: 'configured' | 'descriptors';
  /** The soft RLIMIT_NOFILE in force (raised to the hard limit at start). */
  readonly fileLimit: number;
  readonly descriptorsPerFlow: number;
}

export function tcpCapacity(configured: number, softFileLimit: number, engine: TcpEngineKind): TcpCapacity {
  const perFlow = descriptorsPerFlow(engine);
  const perWorker = connectionCap(configured, softFileLimit, perFlow);
  return { configured, perWorker, limitedBy: perWorker < configured ? 'descriptors' : 'configured', fileLimit: softFileLimit, descriptorsPerFlow: perFlow };
}

/** One line: the cap, and when the file limit lowered it, by how much and how to lift it. */
export function describeCapacity(c: TcpCapacity): string {
  if (c.limitedBy === 'configured') return `at most ${c.perWorker} connections per worker (as configured)`;
  return `at most ${c.perWorker} connections per worker, not the configured ${c.configured}: the descriptor limit ${c.fileLimit} (RLIMIT_NOFILE) holds (${c.fileLimit} - ${RESERVED_DESCRIPTORS} reserved) / ${c.descriptorsPerFlow} per flow; raise it (LimitNOFILE= in the systemd unit, ulimit -n) to ${c.configured * c.descriptorsPerFlow + RESERVED_DESCRIPTORS} for the configured cap`;
}

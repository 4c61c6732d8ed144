/**
 * How many flows a TCP engine can hold: the descriptors of one flow (client and upstream sockets,
 * plus two pipes of two descriptors each for the splice engine) taken from the process's descriptor
 * budget once, at start. Capping below the budget means accepting pauses before accept() can fail
 * with EMFILE. And the cap in force, with the reason, as status, the metrics and doctor report it.
 */
import { DESCRIPTOR_SLACK, type DescriptorBudget } from '../../sys/descriptor-budget.js';
import type { TcpEngineKind } from './engines.js';

/** What a process keeps aside from its file limit before flows get any: the budget's slack. */
export const RESERVED_DESCRIPTORS = DESCRIPTOR_SLACK;

export function descriptorsPerFlow(engine: TcpEngineKind): number {
  return engine === 'splice' ? 6 : 2;
}

/** The connection cap that fits `available` descriptors (at least one flow). Pure. */
export function connectionCap(requested: number, available: number, perFlow: number): number {
  return Math.max(1, Math.min(requested, Math.floor(available / perFlow)));
}

/**
 * Take the descriptors of up to `requested` flows from the budget: `share` of what is left for
 * TCP (a TCP worker process has its budget to itself; TCP in the daemon's process leaves room for
 * UDP). Returns the cap and a function that gives the descriptors back.
 */
export function reserveTcpFlows(budget: DescriptorBudget, requested: number, engine: TcpEngineKind, share = 1): { readonly maxConnections: number; readonly release: () => void } {
  const perFlow = descriptorsPerFlow(engine);
  const maxConnections = connectionCap(requested, Math.floor(budget.available('tcp') * share), perFlow);
  const taken = budget.acquire('tcp', maxConnections * perFlow) ? maxConnections * perFlow : 0;
  let released = false;
  return {
    maxConnections,
    release: () => {
      if (released || taken === 0) return;
      released = true;
      budget.release('tcp', taken);
    },
  };
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

/** The capacity of a worker that applies `perWorker` (what its budget gave) under `softFileLimit`. */
export function tcpCapacity(configured: number, perWorker: number, softFileLimit: number, engine: TcpEngineKind): TcpCapacity {
  return { configured, perWorker, limitedBy: perWorker < configured ? 'descriptors' : 'configured', fileLimit: softFileLimit, descriptorsPerFlow: descriptorsPerFlow(engine) };
}

/** The capacity a worker would get under `softFileLimit` before it starts (doctor): the limit less the reserve. */
export function expectedTcpCapacity(configured: number, softFileLimit: number, engine: TcpEngineKind): TcpCapacity {
  return tcpCapacity(configured, connectionCap(configured, softFileLimit - RESERVED_DESCRIPTORS, descriptorsPerFlow(engine)), softFileLimit, engine);
}

/** One line: the cap, and when the file limit lowered it, by how much and how to lift it. */
export function describeCapacity(c: TcpCapacity): string {
  if (c.limitedBy === 'configured') return `at most ${c.perWorker} connections per worker (as configured)`;
  return `at most ${c.perWorker} connections per worker, not the configured ${c.configured}: the descriptor limit ${c.fileLimit} (RLIMIT_NOFILE) holds (${c.fileLimit} - ${RESERVED_DESCRIPTORS} reserved and what is open at start) / ${c.descriptorsPerFlow} per flow; raise it (LimitNOFILE= in the systemd unit, ulimit -n) to ${c.configured * c.descriptorsPerFlow + RESERVED_DESCRIPTORS} for the configured cap`;
}

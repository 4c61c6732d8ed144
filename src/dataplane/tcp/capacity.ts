/**
 * How many flows a TCP engine can hold: the descriptors of one flow (its client and upstream
 * sockets) taken from the process's descriptor budget once, at start, and for the splice engine a
 * set of pipes shared by the flows that have bytes in flight (an idle flow holds no pipe; see
 * splice/pipe-pool.ts). Capping below the budget means accepting pauses before accept() can fail
 * with EMFILE. And the cap in force, with the reason, as status, the metrics and doctor report it.
 */
import { DESCRIPTOR_SLACK, type DescriptorBudget } from '../../sys/descriptor-budget.js';
import type { TcpEngineKind } from './engines.js';

/** What a process keeps aside from its file limit before flows get any: the budget's slack. */
export const RESERVED_DESCRIPTORS = DESCRIPTOR_SLACK;

/** Shared pipes a splice engine gets whatever its cap (two per flow below that): small caps keep every flow fast. */
export const MIN_SHARED_PIPES = 64;

/** Descriptors every flow holds for its whole life: its two sockets, whatever the engine. */
export function descriptorsPerFlow(_engine: TcpEngineKind): number {
  return 2;
}

/**
 * The pipes a splice engine with a cap of `flows` shares among its flows with bytes in flight: a
 * quarter of the cap (HAProxy's default maxpipes is maxconn / 4), at least MIN_SHARED_PIPES, never
 * more than the two per flow that would never make a direction wait. They go by slots of two, one
 * per flow with bytes in flight (its other way never waits); a flow that finds every slot taken
 * waits for one (splice/pipe-pool.ts). A pipe is held only while its bytes have not reached the
 * sink, so an eighth of the flows can be that slow at once before any waits. None for the other
 * engines (no pipes).
 */
export function sharedPipes(engine: TcpEngineKind, flows: number): number {
  if (engine !== 'splice') return 0;
  return Math.min(2 * flows, Math.max(MIN_SHARED_PIPES, Math.ceil(flows / 4)));
}

/** Descriptors `flows` flows take at most: two sockets each, two per shared pipe. Pure. */
export function descriptorsForFlows(engine: TcpEngineKind, flows: number): number {
  return flows * descriptorsPerFlow(engine) + 2 * sharedPipes(engine, flows);
}

/** The largest cap up to `requested` whose descriptors fit in `available` (at least one flow). Pure. */
export function connectionCap(requested: number, available: number, engine: TcpEngineKind): number {
  let fits = 1;
  let over = Math.max(1, requested) + 1;
  // descriptorsForFlows grows with the cap: bisect (about 17 steps for 100,000).
  while (over - fits > 1) {
    const mid = Math.floor((fits + over) / 2);
    if (descriptorsForFlows(engine, mid) <= available) fits = mid;
    else over = mid;
  }
  return fits;
}

/**
 * Take the descriptors of up to `requested` flows from the budget: `share` of what is left for
 * TCP (a TCP worker process has its budget to itself; TCP in the daemon's process leaves room for
 * UDP). Returns the cap and a function that gives the descriptors back.
 */
export function reserveTcpFlows(budget: DescriptorBudget, requested: number, engine: TcpEngineKind, share = 1): { readonly maxConnections: number; readonly release: () => void } {
  const maxConnections = connectionCap(requested, Math.floor(budget.available('tcp') * share), engine);
  const needed = descriptorsForFlows(engine, maxConnections);
  const taken = budget.acquire('tcp', needed) ? needed : 0;
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
  /** Descriptors each flow holds (its two sockets). */
  readonly descriptorsPerFlow: number;
  /** Pipes (two descriptors each) a worker shares among its flows with bytes in flight (splice). */
  readonly sharedPipes: number;
  /** The file limit the configured cap needs, reserve included. */
  readonly neededFileLimit: number;
}

/** The capacity of a worker that applies `perWorker` (what its budget gave) under `softFileLimit`. */
export function tcpCapacity(configured: number, perWorker: number, softFileLimit: number, engine: TcpEngineKind): TcpCapacity {
  return {
    configured,
    perWorker,
    limitedBy: perWorker < configured ? 'descriptors' : 'configured',
    fileLimit: softFileLimit,
    descriptorsPerFlow: descriptorsPerFlow(engine),
    sharedPipes: sharedPipes(engine, perWorker),
    neededFileLimit: descriptorsForFlows(engine, configured) + RESERVED_DESCRIPTORS,
  };
}

/** The capacity a worker would get under `softFileLimit` before it starts (doctor): the limit less the reserve. */
export function expectedTcpCapacity(configured: number, softFileLimit: number, engine: TcpEngineKind): TcpCapacity {
  return tcpCapacity(configured, connectionCap(configured, softFileLimit - RESERVED_DESCRIPTORS, engine), softFileLimit, engine);
}

/** How the descriptors divide: "2 per flow", plus the shared pipes when there are any. */
export function descriptorShares(c: Pick<TcpCapacity, 'descriptorsPerFlow' | 'sharedPipes'>): string {
  return c.sharedPipes > 0 ? `${c.descriptorsPerFlow} per flow plus 2 for each of ${c.sharedPipes} pipes the flows with bytes in flight share` : `${c.descriptorsPerFlow} per flow`;
}

/** One line: the cap, and when the file limit lowered it, by how much and how to lift it. */
export function describeCapacity(c: TcpCapacity): string {
  if (c.limitedBy === 'configured') return `at most ${c.perWorker} connections per worker (as configured)`;
  return `at most ${c.perWorker} connections per worker, not the configured ${c.configured}: the descriptor limit ${c.fileLimit} (RLIMIT_NOFILE) holds (${c.fileLimit} - ${RESERVED_DESCRIPTORS} reserved and what is open at start) at ${descriptorShares(c)}; raise it (LimitNOFILE= in the systemd unit, ulimit -n) to ${c.neededFileLimit} for the configured cap`;
}

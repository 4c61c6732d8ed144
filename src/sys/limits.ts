/**
 * Process limits. A proxy holds two to six descriptors per TCP flow and two per UDP session, so
 * the soft RLIMIT_NOFILE (often 1024) is raised to the hard limit at start, as HAProxy and nginx
 * do; the process's descriptor budget (descriptor-budget.ts) is made from the limit then in force.
 */
import { readdirSync } from 'node:fs';
import { DescriptorBudget, type DescriptorBudgetOptions } from './descriptor-budget.js';
import { loadLibc, type Libc } from './libc.js';

const RLIMIT_NOFILE = 7;

export interface FileLimit {
  readonly soft: number;
  readonly hard: number;
}

export function fileLimit(libc: Libc = loadLibc()): FileLimit {
  const buf = Buffer.alloc(16);
  if (libc.getrlimit(RLIMIT_NOFILE, buf) !== 0) return { soft: 1024, hard: 1024 };
  const clamp = (v: bigint): number => (v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v));
  return { soft: clamp(buf.readBigUInt64LE(0)), hard: clamp(buf.readBigUInt64LE(8)) };
}

/** Raise the soft descriptor limit to the hard one; returns the limit now in force. */
export function raiseFileLimit(libc: Libc = loadLibc()): FileLimit {
  const current = fileLimit(libc);
  if (current.soft >= current.hard) return current;
  const buf = Buffer.alloc(16);
  if (libc.getrlimit(RLIMIT_NOFILE, buf) !== 0) return current;
  buf.copy(buf, 0, 8, 16); // soft = hard, bit for bit (RLIM_INFINITY does not fit a double)
  if (libc.setrlimit(RLIMIT_NOFILE, buf) !== 0) return current;
  return fileLimit(libc);
}

/** Descriptors this process has open now (/proc/self/fd; the directory's own descriptor not counted). */
export function openDescriptorCount(): number {
  try {
    return Math.max(0, readdirSync('/proc/self/fd').length - 1);
  } catch {
    return 0;
  }
}

/**
 * The descriptor budget of this process: the soft limit raised to the hard one, less what is open
 * now. Made once per process (the daemon, each TCP worker) by its entry point and passed in.
 */
export function processDescriptorBudget(reserves: Omit<DescriptorBudgetOptions, 'limit' | 'open'> = {}, libc: Libc = loadLibc()): DescriptorBudget {
  const limit = raiseFileLimit(libc);
  return DescriptorBudget.create({ ...reserves, limit: limit.soft, open: openDescriptorCount() });
}

/**
 * Process limits. A proxy holds two descriptors per TCP flow, so the soft RLIMIT_NOFILE (often
 * 1024) is raised to the hard limit at start, as HAProxy and nginx do.
 */
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

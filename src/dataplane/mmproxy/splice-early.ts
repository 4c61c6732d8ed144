/**
 * The client's bytes that came in the same read as the PROXY header (splice-engine.ts reads the
 * header with one recv, not a peek and a read), written to the just connected backend before
 * anything is spliced: its send buffer is empty, so one send mostly takes them all; what a short
 * send leaves goes into the client direction's pipe (empty, far larger than the first read), where
 * the pump sends it on ahead of any later byte. No byte is lost and the order is kept.
 */
import * as C from '../../core/net/constants.js';
import type { Libc } from '../../sys/libc.js';
import type { PipePool } from '../tcp/splice/pipe-pool.js';
import type { Direction } from '../tcp/splice/pump.js';

/** The libc calls it makes (a fake in unit tests). */
export type EarlyLibc = Pick<Libc, 'send' | 'write' | 'errno'>;

/** Why the early bytes could not be handed on: the backend socket's errno, or no pipe (pipe2's errno). */
export interface EarlyFailure {
  readonly at: 'backend' | 'pipe';
  readonly errno: number;
}

/**
 * Send `early` on `ufd` (non-blocking); the rest into `up`'s pipe (taken from `pipes`), counted
 * in `up.buffered`. `up.bytes` counts them all (read from the client). Undefined when done.
 */
export function writeEarlyBytes<W>(libc: EarlyLibc, pipes: PipePool<W>, ufd: number, up: Direction, down: Direction, early: Buffer): EarlyFailure | undefined {
  up.bytes += early.length;
  // Node ignores SIGPIPE: a backend gone already is an EPIPE here.
  const sent = libc.send(ufd, early, early.length, C.MSG_DONTWAIT);
  if (sent === early.length) return undefined;
  if (sent < 0) {
    const errno = libc.errno();
    if (errno !== C.EAGAIN && errno !== C.EINTR) return { at: 'backend', errno };
  }
  const rest = early.subarray(Math.max(0, sent));
  if (up.r < 0 && !pipes.take(up, down)) return { at: 'pipe', errno: libc.errno() };
  const written = libc.write(up.w, rest, rest.length);
  if (written !== rest.length) return { at: 'pipe', errno: written < 0 ? libc.errno() : C.EAGAIN };
  up.buffered += rest.length;
  return undefined;
}

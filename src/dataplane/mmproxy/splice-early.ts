/**
 * The client's bytes that came in the same read as the PROXY header (splice-engine.ts reads the
 * header with one recv, not a peek and a read), written to the just connected backend before
 * anything else: its send buffer is empty, so one send mostly takes them all; what a short send
 * leaves is held by the client direction (the pump's `held`), which sends it on ahead of any later
 * byte and reads the client no more until it went. No pipe, no byte lost, the order kept.
 */
import * as C from '../../core/net/constants.js';
import type { Libc } from '../../sys/libc.js';
import type { Direction } from '../tcp/splice/pump.js';

/** The libc calls it makes (a fake in unit tests). */
export type EarlyLibc = Pick<Libc, 'send' | 'errno'>;

/**
 * Send `early` on `ufd` (non-blocking); the rest is held by `up` (a view of `early`, which the
 * direction then owns). `up.bytes` counts them all (read from the client). Undefined when done, or
 * the backend socket's errno.
 */
export function writeEarlyBytes(libc: EarlyLibc, ufd: number, up: Direction, early: Buffer): number | undefined {
  up.bytes += early.length;
  // Node ignores SIGPIPE: a backend gone already is an EPIPE here.
  const sent = libc.send(ufd, early, early.length, C.MSG_DONTWAIT);
  if (sent === early.length) return undefined;
  if (sent < 0) {
    const errno = libc.errno();
    if (errno !== C.EAGAIN && errno !== C.EINTR) return errno;
  }
  up.held = early.subarray(Math.max(0, sent));
  return undefined;
}

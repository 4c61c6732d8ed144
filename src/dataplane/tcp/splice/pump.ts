/**
 * The byte pump of the splice engine: one direction of a flow, source socket -> pipe -> sink
 * socket with splice(2). Bytes never enter JavaScript.
 *
 * The source is read only while the direction's pipe has room (backpressure: at most its pipe's
 * size in flight: `pipeBytes`, or BULK_PIPE_BYTES once a full pipe grew). A direction with nothing in flight holds no pipe; when it needs one and the budget
 * is spent it waits (`waiting`: not read, the engine puts it in the pool's line) instead of failing. A FIN crosses as shutdown(SHUT_WR) on the sink once the pipe is drained
 * (half-close); the sink loses its SO_LINGER {1, 0} first, so from then on a crash no longer
 * resets that peer. An error on either socket is returned; the engine resets the flow.
 */
import * as C from '../../../core/net/constants.js';
import type { Libc } from '../../../sys/libc.js';
import type { PipeEnds, PipePool } from './pipe-pool.js';

/** The libc calls the pump makes (a fake in unit tests). */
export type PumpLibc = Pick<Libc, 'splice' | 'setsockopt' | 'shutdown' | 'errno'>;

export interface Direction extends PipeEnds {
  /** Bytes in the pipe. */
  buffered: number;
  /** The source sent its FIN. */
  eof: boolean;
  /** We passed the FIN on (shutdown SHUT_WR on the sink). */
  shut: boolean;
  /** Bytes read from the source so far. */
  bytes: number;
  /** It needs a pipe and the budget is spent: not read until the pool hands it one. */
  waiting: boolean;
}

export const newDirection = (): Direction => ({ r: -1, w: -1, size: 0, buffered: 0, eof: false, shut: false, bytes: 0, waiting: false });

/** What `d`'s pipe holds at most: its own size while it holds one, else the pool's size for new pipes. */
export function capacityOf(d: Direction, pipeBytes: number): number {
  const size = d.r >= 0 ? (d.size ?? 0) : 0;
  return size > 0 ? size : pipeBytes;
}

/** Why a direction stopped: its source or sink failed (errno), or pipe2 failed (errno: out of descriptors). */
export interface PumpFailure {
  readonly at: 'source' | 'sink' | 'pipe';
  readonly errno: number;
}

const SPLICE_FLAGS = C.SPLICE_F_MOVE | C.SPLICE_F_NONBLOCK;
/** struct linger {0, 0}: close() and exit send a FIN again. */
const NO_LINGER = Buffer.alloc(8);

export class Pump {
  constructor(
    private readonly libc: PumpLibc,
    private readonly pipes: PipePool,
    private readonly pipeBytes: number,
  ) {}

  /**
   * Move what can be moved from `source` to `sink` now (up to PUMP_ROUNDS pipe-fulls) and pass
   * the FIN on once everything before it went. `finished`: the source's FIN is known to have
   * arrived (EPOLLRDHUP), so reading on to it now is worth a call. `other`: the opposite
   * direction; when it is already shut the flow ends and its close() sends this FIN instead.
   * Undefined, or why the flow must be reset. Sets `d.waiting` when it needs a pipe the budget
   * cannot give now.
   */
  move(d: Direction, other: Direction, source: number, sink: number, finished: boolean): PumpFailure | undefined {
    const { libc, pipeBytes } = this;
    d.waiting = false;
    for (let round = 0; round < C.PUMP_ROUNDS; round++) {
      let progressed = false;
      // A short read means the socket is (almost surely) drained: no retry that would only return
      // EAGAIN. Level-triggered epoll reports whatever is left, EOF included, on the next turn;
      // unless the FIN is known to be there, when the retry reads it (0) now.
      let shortRead = false;
      if (!d.eof && d.buffered < capacityOf(d, pipeBytes)) {
        if (d.r < 0) {
          // Within the flow's slot when the other way holds a pipe: never waits then.
          if (other.r < 0 && this.pipes.spent) {
            d.waiting = true;
            break;
          }
          if (!this.pipes.take(d, other)) return { at: 'pipe', errno: libc.errno() };
        }
        const want = capacityOf(d, pipeBytes) - d.buffered;
        const n = libc.splice(source, null, d.w, null, want, SPLICE_FLAGS);
        if (n > 0) {
          d.buffered += n;
          d.bytes += n;
          progressed = true;
          shortRead = n < want && !finished;
        } else if (n === 0) {
          d.eof = true;
        } else {
          const errno = libc.errno();
          if (errno !== C.EAGAIN && errno !== C.EINTR) return { at: 'source', errno };
        }
      }
      if (d.buffered > 0) {
        const n = libc.splice(d.r, null, sink, null, d.buffered, SPLICE_FLAGS);
        if (n > 0) {
          d.buffered -= n;
          progressed = true;
        } else if (n < 0) {
          const errno = libc.errno();
          if (errno !== C.EAGAIN && errno !== C.EINTR) return { at: 'sink', errno };
        }
      }
      if (!progressed || shortRead) break;
    }
    // Nothing in flight: the pipe goes back to the pool until the source has bytes again.
    if (d.buffered === 0) this.pipes.release(d, true, other);
    // Full, and the sink took no more: a bulk transfer, whose source outruns its sink. A bigger
    // pipe moves more per splice and per turn (pipe-pool.ts BULK_PIPE_BYTES).
    else if (!d.eof && d.buffered >= capacityOf(d, pipeBytes)) this.pipes.grow(d);
    if (d.eof && d.buffered === 0 && !d.shut) {
      // The FIN toward the sink's peer goes now: from here on a crash must not reset that peer.
      libc.setsockopt(sink, C.SOL_SOCKET, C.SO_LINGER, NO_LINGER, NO_LINGER.length);
      // When the other way is already shut the flow closes right after this pump, and close()
      // sends the FIN (both sockets were read to EOF, so it is a FIN, not a reset).
      if (!other.shut) libc.shutdown(sink, C.SHUT_WR);
      d.shut = true;
    }
    return undefined;
  }
}

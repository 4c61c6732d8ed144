/**
 * The byte pump of the splice engines: one direction of a flow, source socket -> sink socket.
 *
 * Two modes per direction. Small messages are COPIED: recv(MSG_DONTWAIT) into the engine thread's
 * scratch buffer and send() straight on; no pipe is held for them (for a 100-byte request, splice
 * costs the kernel more than a copy: the skb's data is copied into a page anyway, plus the pipe's
 * bookkeeping). A read that fills the scratch buffer (a bulk transfer) or a sink that does not take
 * everything switches the direction to SPLICE: socket -> pipe -> socket with splice(2), the bytes
 * never entering JavaScript. Bytes a sink left unsent in copy mode are kept in the direction's own
 * copy (`held`, at most one scratch buffer) and go before anything else, pipe included: order is
 * exact. A splicing direction returns to copying once it drained (nothing held, pipe empty) after a
 * call that read less than COPY_AGAIN_BELOW: the bulk is over.
 *
 * The source is read only while there is room (backpressure): in copy mode while nothing is held,
 * in splice mode while the pipe has room (`pipeBytes`, or BULK_PIPE_BYTES once a full pipe grew);
 * at most a scratch buffer plus a pipe in flight per direction. A direction with nothing in its pipe
 * holds no pipe. A splicing direction that needs one while the budget is spent copies on when it
 * holds nothing; with bytes held it waits (`waiting`: not read, the engine puts it in the pool's
 * line) instead of failing. A FIN crosses as shutdown(SHUT_WR) on the
 * sink once everything before it went (half-close); the sink loses its SO_LINGER {1, 0} first, so
 * from then on a crash no longer resets that peer. An error on either socket is returned; the engine
 * resets the flow.
 */
import * as C from '../../../core/net/constants.js';
import type { Libc } from '../../../sys/libc.js';
import type { PipeEnds, PipePool } from './pipe-pool.js';

/** The libc calls the pump makes (a fake in unit tests). */
export type PumpLibc = Pick<Libc, 'splice' | 'recv' | 'send' | 'setsockopt' | 'shutdown' | 'errno'>;

/**
 * The scratch buffer of an engine thread's pump: what one copy moves at most, and the size of a
 * read that marks a bulk transfer (it switches the direction to splice). The kernel's default pipe
 * size: a bulk direction's first pipe takes as much as one copy did.
 */
export const COPY_BYTES = 64 * 1024;

/**
 * A splicing direction copies again once it drained after a call that read less than this: a
 * message, not a bulk transfer's share of a wake-up. Not the scratch size: a bulk stream whose
 * proxy keeps up is read a few tens of KiB per wake-up, and would be copied whole (one stream's
 * proxy CPU per GB rose from 0.27 to 0.31 s in the bench with that rule).
 */
export const COPY_AGAIN_BELOW = 4096;

export interface Direction extends PipeEnds {
  /** Bytes in the pipe. */
  buffered: number;
  /** Bytes read in copy mode the sink did not take yet: sent before anything else (undefined: none). */
  held: Buffer | undefined;
  /** Moving through a pipe with splice (bulk, or a slow sink); else copying through the scratch buffer. */
  splicing: boolean;
  /** The source sent its FIN. */
  eof: boolean;
  /** We passed the FIN on (shutdown SHUT_WR on the sink). */
  shut: boolean;
  /** Bytes read from the source so far. */
  bytes: number;
  /** It needs a pipe and the budget is spent: not read until the pool hands it one. */
  waiting: boolean;
}

export const newDirection = (): Direction => ({ r: -1, w: -1, size: 0, buffered: 0, held: undefined, splicing: false, eof: false, shut: false, bytes: 0, waiting: false });

/** What `d`'s pipe holds at most: its own size while it holds one, else the pool's size for new pipes. */
export function capacityOf(d: Direction, pipeBytes: number): number {
  const size = d.r >= 0 ? (d.size ?? 0) : 0;
  return size > 0 ? size : pipeBytes;
}

/** Bytes read from the source and not yet sent on: held and in the pipe. */
export function inFlight(d: Direction): number {
  return d.buffered + (d.held?.length ?? 0);
}

/** Whether the source may be read now (no FIN yet, not waiting, room for what a read brings). */
export function readable(d: Direction, pipeBytes: number): boolean {
  if (d.eof || d.waiting) return false;
  return d.splicing ? d.buffered < capacityOf(d, pipeBytes) : d.held === undefined;
}

/** Why a direction stopped: its source or sink failed (errno), or pipe2 failed (errno: out of descriptors). */
export interface PumpFailure {
  readonly at: 'source' | 'sink' | 'pipe';
  readonly errno: number;
}

const SPLICE_FLAGS = C.SPLICE_F_MOVE | C.SPLICE_F_NONBLOCK;
/** struct linger {0, 0}: close() and exit send a FIN again. */
const NO_LINGER = Buffer.alloc(8);

/** An errno that only means "not now". */
const retryable = (errno: number): boolean => errno === C.EAGAIN || errno === C.EINTR;

export class Pump {
  private readonly scratch: Buffer;

  constructor(
    private readonly libc: PumpLibc,
    private readonly pipes: PipePool,
    private readonly pipeBytes: number,
    /** The scratch buffer's size (COPY_BYTES); one buffer per pump, so per engine thread. */
    copyBytes = COPY_BYTES,
  ) {
    this.scratch = Buffer.allocUnsafe(copyBytes);
  }

  /**
   * Move what can be moved from `source` to `sink` now (up to PUMP_ROUNDS reads) and pass the FIN
   * on once everything before it went. `finished`: the source's FIN is known to have arrived
   * (EPOLLRDHUP), so reading on to it now is worth a call. `other`: the opposite direction; when it
   * is already shut the flow ends and its close() sends this FIN instead. Undefined, or why the
   * flow must be reset. Sets `d.waiting` when it needs a pipe the budget cannot give now.
   */
  move(d: Direction, other: Direction, source: number, sink: number, finished: boolean): PumpFailure | undefined {
    const { pipeBytes } = this;
    d.waiting = false;
    let read = 0;
    for (let round = 0; round < C.PUMP_ROUNDS; round++) {
      let progressed = false;
      if (d.held) {
        const sent = this.sendHeld(d, sink);
        if (sent < 0) return { at: 'sink', errno: -sent };
        progressed = sent > 0;
      }
      // A short read means the socket is (almost surely) drained: no retry that would only return
      // EAGAIN. Level-triggered epoll reports whatever is left, EOF included, on the next turn;
      // unless the FIN is known to be there, when the retry reads it (0) now.
      let shortRead = false;
      if (!d.splicing) {
        if (!d.eof && d.held === undefined) {
          const n = this.copy(d, source, sink, finished);
          if (typeof n !== 'number') return n;
          if (n > 0) {
            read += n;
            progressed = true;
            shortRead = !d.splicing && n < this.scratch.length && !finished;
          }
        }
      } else {
        if (!d.eof && d.buffered < capacityOf(d, pipeBytes)) {
          if (d.r < 0) {
            // Within the flow's slot when the other way holds a pipe: never waits then. Without
            // one, a direction holding nothing copies on; one with bytes held waits in line.
            if (other.r < 0 && this.pipes.spent) {
              if (d.held === undefined) {
                d.splicing = false;
                continue;
              }
              d.waiting = true;
              break;
            }
            if (!this.pipes.take(d, other)) return { at: 'pipe', errno: this.libc.errno() };
          }
          const want = capacityOf(d, pipeBytes) - d.buffered;
          const n = this.libc.splice(source, null, d.w, null, want, SPLICE_FLAGS);
          if (n > 0) {
            d.buffered += n;
            d.bytes += n;
            read += n;
            progressed = true;
            shortRead = n < want && !finished;
          } else if (n === 0) {
            d.eof = true;
          } else {
            const errno = this.libc.errno();
            if (!retryable(errno)) return { at: 'source', errno };
          }
        }
        // Held bytes go first: the pipe waits until they went.
        if (d.buffered > 0 && d.held === undefined) {
          const n = this.libc.splice(d.r, null, sink, null, d.buffered, SPLICE_FLAGS);
          if (n > 0) {
            d.buffered -= n;
            progressed = true;
          } else if (n < 0) {
            const errno = this.libc.errno();
            if (!retryable(errno)) return { at: 'sink', errno };
          }
        }
      }
      if (!progressed || shortRead) break;
    }
    // Nothing in the pipe: it goes back to the pool until the source has bulk again.
    if (d.buffered === 0) {
      this.pipes.release(d, true, other);
      // Drained after a small read: the bulk is over, the next bytes are copied again.
      if (d.splicing && d.held === undefined && read < COPY_AGAIN_BELOW) d.splicing = false;
    }
    // Full, and the sink took no more: a bulk transfer, whose source outruns its sink. A bigger
    // pipe moves more per splice and per turn (pipe-pool.ts BULK_PIPE_BYTES).
    else if (!d.eof && d.buffered >= capacityOf(d, pipeBytes)) this.pipes.grow(d);
    if (d.eof && inFlight(d) === 0 && !d.shut) {
      // The FIN toward the sink's peer goes now: from here on a crash must not reset that peer.
      this.libc.setsockopt(sink, C.SOL_SOCKET, C.SO_LINGER, NO_LINGER, NO_LINGER.length);
      // When the other way is already shut the flow closes right after this pump, and close()
      // sends the FIN (both sockets were read to EOF, so it is a FIN, not a reset).
      if (!other.shut) this.libc.shutdown(sink, C.SHUT_WR);
      d.shut = true;
    }
    return undefined;
  }

  /**
   * One copy: recv into the scratch buffer, send it on. Bytes read (0: none now, or the FIN), or
   * the failure. What the sink does not take is held; that, or a read that filled the buffer,
   * switches `d` to splice.
   *
   * `finished` (the FIN has arrived): the source is read on to its FIN before the bytes are sent
   * (the read the FIN took anyway, made first), and a FIN found so goes in their segment: the send
   * says MSG_MORE (TCP holds the last part segment) and the shutdown that follows (move) sets the
   * FIN on it. One packet, and one ACK back, instead of two each: a server closing after its
   * response does so on every connection. An error found so is returned after the bytes went, as
   * the next read would have.
   */
  private copy(d: Direction, source: number, sink: number, finished: boolean): number | PumpFailure {
    const { libc, scratch } = this;
    let n = libc.recv(source, scratch, scratch.length, C.MSG_DONTWAIT);
    if (n === 0) {
      d.eof = true;
      return 0;
    }
    if (n < 0) {
      const errno = libc.errno();
      return retryable(errno) ? 0 : { at: 'source', errno };
    }
    let after: PumpFailure | undefined;
    if (finished && n < scratch.length) {
      const m = libc.recv(source, scratch.subarray(n), scratch.length - n, C.MSG_DONTWAIT);
      if (m === 0) d.eof = true;
      else if (m > 0) n += m;
      else {
        const errno = libc.errno();
        if (!retryable(errno)) after = { at: 'source', errno };
      }
    }
    d.bytes += n;
    // Node ignores SIGPIPE: a sink gone is an EPIPE here.
    let sent = libc.send(sink, scratch, n, d.eof ? C.MSG_DONTWAIT | C.MSG_MORE : C.MSG_DONTWAIT);
    if (sent < 0) {
      const errno = libc.errno();
      if (!retryable(errno)) return { at: 'sink', errno };
      sent = 0;
    }
    if (sent < n) {
      // The sink is slower than the source: keep the rest (a copy: the scratch buffer is the next
      // flow's) and splice what comes next.
      d.held = Buffer.from(scratch.subarray(sent, n));
      d.splicing = true;
    } else if (n === scratch.length) {
      d.splicing = true;
    }
    return after ?? n;
  }

  /** Send what `d` holds: bytes sent (0: the sink took none now), or -errno when the sink failed. */
  private sendHeld(d: Direction, sink: number): number {
    const held = d.held!;
    const sent = this.libc.send(sink, held, held.length, C.MSG_DONTWAIT);
    if (sent < 0) {
      const errno = this.libc.errno();
      return retryable(errno) ? 0 : -errno;
    }
    d.held = sent >= held.length ? undefined : held.subarray(sent);
    return sent;
  }
}

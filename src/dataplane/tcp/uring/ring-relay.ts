/**
 * The relay of a socket pair through io_uring, shared by the uring engines (the TPROXY one,
 * engine.ts, and mmproxy's, ../../mmproxy/uring-engine.ts): what happens between "connected" and
 * "closed", and the "first bytes" phase before it.
 *
 * Relay: recv into a buffer the kernel picks from the provided buffer ring when bytes arrive (so an
 * idle flow holds no buffer), send of that buffer to the other socket; one buffer in flight per
 * direction (backpressure): the send (MSG_WAITALL: the kernel goes on until every byte went) is
 * linked to the source's next recv, which the kernel issues as soon as the send went whole, in the
 * same io_uring_enter when the socket had room, so a FIN right behind the last bytes crosses in the
 * turn that sent them instead of one ring round trip later (a failed send cancels it). A FIN
 * crosses as shutdown(SHUT_WR) (half-close); an error on either socket ends the pair (the engine
 * resets both). A direction that finds the buffer ring empty (ENOBUFS) waits for the next buffer
 * given back.
 *
 * First bytes: before a pair relays, the client's bytes are received the same way and offered to a
 * pure decoder (core/first-bytes.ts: a PROXY header, later a ClientHello). Its decision goes to the
 * engine; the bytes after what the decoder took stay in their buffer (or in the decoder's held
 * copy) and are the first bytes sent upstream once the engine starts the relay. The phase's
 * deadline is the engine's (its timers): it ends the pair, and a recv still in flight comes back
 * ECANCELED to a pair already gone.
 *
 * Busy directions: a recv that filled its buffer makes the direction's next recv take a big one
 * (a second, smaller provided ring of bigger buffers, when the engine asks for it): a stream moves
 * in fewer, bigger steps (fewer recvs, sends and completions per byte); a recv that comes back
 * with less than a small buffer's worth, or finds no big buffer, goes back to the small ones.
 *
 * Operation kinds 4-7, 12, 16, 17, 21 and 22 in user_data are this file's; each engine uses others for its own.
 */
import { errnoName } from '../../../core/errno.js';
import type { FirstBytes, FirstBytesStep } from '../../../core/first-bytes.js';
import * as C from '../../../core/net/constants.js';
import * as U from '../../../core/net/io-uring.js';
import type { Libc } from '../../../sys/libc.js';
import type { BufferRing, IoUring } from '../../../sys/io-uring.js';
import type { SocketApi } from '../../../sys/socket.js';

export const RelayOp = {
  RecvClient: 4,
  RecvUpstream: 5,
  SendUpstream: 6,
  SendClient: 7,
  /** The linked options, shutdown and close of a FIN or an orderly end: a CQE only on failure. */
  Finish: 12,
  /** A recv of the first-bytes phase (from the client). */
  RecvFirst: 16,
  /** The cancel of a first-bytes recv at its deadline. */
  Cancel: 17,
  /** Recvs into a big buffer (a busy direction). */
  RecvClientBig: 21,
  RecvUpstreamBig: 22,
} as const;


export interface RelayDirection {
  /** The buffer being sent on (-1: none), its length and how much of it went. */
  bid: number;
  length: number;
  sent: number;
  /** First bytes held in a copy (the decoder's), sent before anything else; then undefined. */
  early: Buffer | undefined;
  eof: boolean;
  /** The source failed (an errno) right behind the bytes being sent: the pair ends once they went. */
  failed: number;
  shut: boolean;
  bytes: number;
  /** Waiting for a buffer (the ring ran dry). */
  starved: boolean;
  /** Recvs linked to a send that went short (it failed part way): their CQEs say ECANCELED, and are not the source's. */
  cancelled: number;
  /** The last recv filled its buffer: the next takes a big one (where the engine has them). */
  busy: boolean;
  /** `bid` is a big buffer. */
  big: boolean;
}

export interface RelayPair<T = unknown> {
  readonly id: number;
  readonly cfd: number;
  /** -1 while there is no upstream socket. */
  ufd: number;
  closed: boolean;
  /** client -> upstream, upstream -> client. */
  readonly up: RelayDirection;
  readonly down: RelayDirection;
  lastActive: number;
  /** Operations on the pair's sockets not yet completed. */
  pending: number;
  /** In the first-bytes phase: what was received so far, and the decoder. */
  first: FirstBytes<T> | undefined;
  /** The first-bytes deadline passed (expireFirst): its recv was cancelled. */
  firstExpired?: boolean;
}

/** The client's bytes wait to go upstream as soon as the pair connects (its socket's setup delays the handshake's ACK for them: upstream-setup.ts). */
export const holdsFirstBytes = (pair: RelayPair): boolean => pair.up.bid >= 0 || pair.up.early !== undefined;

export const newDirection = (): RelayDirection => ({ bid: -1, length: 0, sent: 0, early: undefined, eof: false, failed: 0, shut: false, bytes: 0, starved: false, cancelled: 0, busy: false, big: false });

export interface RingRelayOptions<P, T> {
  readonly group: number;
  readonly bufferBytes: number;
  /** SO_LINGER and close through the ring (the kernel has socket commands there). */
  readonly ringSockets: boolean;
  /** The pair ended: the engine closes it (`lastFin`: an orderly end, see closeSockets). */
  readonly end: (pair: P, reason: string, lastFin?: number) => void;
  /** The first-bytes phase decided (done or fail): the engine goes on (or ends the pair). */
  readonly decided?: (pair: P, step: Exclude<FirstBytesStep<T>, { kind: 'more' }>) => void;
  /** Big buffers for busy directions: a provided ring of `count` buffers of `size` bytes as `group` (this file's to open and close). */
  readonly big?: { readonly group: number; readonly count: number; readonly size: number };
}

export class RingRelay<P extends RelayPair<T>, T = unknown> {
  private readonly starved: P[] = [];
  private readonly noLinger = Buffer.alloc(8);
  /** SO_LINGER {0, 0} for the ring's setsockopt (it reads it at submission). */
  private readonly lingerOffAddress: number;
  /** An int 1 for the ring's setsockopt (TCP_QUICKACK back on). */
  private readonly one = Buffer.alloc(4);
  private readonly oneAddress: number;
  private readonly memory: Buffer;
  private readonly big: BufferRing | undefined;
  private readonly bigMemory: Buffer | undefined;

  constructor(
    private readonly ring: IoUring,
    private readonly buffers: BufferRing,
    private readonly libc: Libc,
    private readonly api: SocketApi,
    private readonly now: () => number,
    private readonly options: RingRelayOptions<P, T>,
  ) {
    this.lingerOffAddress = Number(libc.address(this.noLinger));
    this.one.writeInt32LE(1, 0);
    this.oneAddress = Number(libc.address(this.one));
    this.memory = buffers.memory();
    const big = options.big;
    this.big = big ? ring.bufferRing(big.group, big.count, big.size) : undefined;
    this.bigMemory = this.big?.memory();
  }

  /** The big buffers go (the ring closed first: the kernel holds none of them). */
  close(): void {
    this.big?.close();
  }

  /** A completion of this file's kinds (`pending` already counted down by the engine). False: not one of them. */
  complete(kind: number, pair: P, res: number, flags: number): boolean {
    switch (kind) {
      case RelayOp.RecvClient:
      case RelayOp.RecvClientBig:
        this.onRecv(pair, pair.up, 'client', res, flags, kind === RelayOp.RecvClientBig);
        return true;
      case RelayOp.RecvUpstream:
      case RelayOp.RecvUpstreamBig:
        this.onRecv(pair, pair.down, 'upstream', res, flags, kind === RelayOp.RecvUpstreamBig);
        return true;
      case RelayOp.SendUpstream:
        this.onSent(pair, pair.up, 'upstream', res);
        return true;
      case RelayOp.SendClient:
        this.onSent(pair, pair.down, 'client', res);
        return true;
      case RelayOp.RecvFirst:
        this.onFirst(pair, res, flags);
        return true;
      default:
        return false;
    }
  }

  // ---- first bytes ----------------------------------------------------------------------------

  /** Receive the client's next bytes for the pair's first-bytes decoder (pair.first set). */
  recvFirst(pair: P): void {
    pair.pending++;
    this.ring.recvSelect(pair.cfd, this.options.group, this.options.bufferBytes, RelayOp.RecvFirst, pair.id);
  }

  /**
   * The engine's deadline for the first bytes passed: the recv in flight is cancelled, and the phase
   * ends as the decoder says for a deadline (with the bytes received up to its CQE).
   */
  expireFirst(pair: P): void {
    const first = pair.first;
    if (!first || pair.firstExpired) return;
    pair.firstExpired = true;
    if (!pair.up.starved) {
      this.ring.cancel(RelayOp.RecvFirst, pair.id, RelayOp.Cancel);
      return;
    }
    // Waiting for a buffer: no recv to cancel.
    pair.up.starved = false;
    pair.first = undefined;
    this.finishFirst(pair, first.ended('deadline'));
  }

  private onFirst(pair: P, res: number, flags: number): void {
    const first = pair.first;
    if (!first) {
      this.giveBackFlags(flags);
      return;
    }
    if (res === -C.ENOBUFS && !pair.firstExpired) {
      pair.up.starved = true;
      this.starved.push(pair);
      return;
    }
    if (res <= 0) {
      // A FIN, or an error (a reset), before the decision, or the recv cancelled at the deadline.
      // (A sniffer decides without a name: the FIN is received again, and passed on, once the
      // bytes before it are sent.)
      pair.first = undefined;
      this.finishFirst(pair, first.ended(res !== 0 && pair.firstExpired ? 'deadline' : 'eof'));
      return;
    }
    const bid = flags >>> U.IORING_CQE_BUFFER_SHIFT;
    this.buffers.taken();
    pair.lastActive = this.now();
    const at = bid * this.buffers.size;
    const step = first.offer(this.memory.subarray(at, at + res));
    if (step.kind === 'more') {
      this.giveBack(bid);
      if (!pair.firstExpired) this.recvFirst(pair);
      else {
        pair.first = undefined;
        this.finishFirst(pair, first.ended('deadline'));
      }
      return;
    }
    pair.first = undefined;
    this.finishFirst(pair, step, bid, res);
  }

  /**
   * The phase decided: on `done`, the bytes after the decoder's are kept as the relay's first,
   * sent upstream once it starts (from buffer `bid` of `length` bytes, the last one received, or
   * from the decoder's held copy). Then the engine hears of it.
   */
  private finishFirst(pair: P, step: Exclude<FirstBytesStep<T>, { kind: 'more' }>, bid = -1, length = 0): void {
    if (step.kind === 'done') {
      const d = pair.up;
      const rest = step.rest;
      if (rest.in === 'chunk' && bid >= 0 && rest.offset < length) {
        d.bid = bid;
        d.length = length;
        d.sent = rest.offset;
        d.bytes += length - rest.offset;
        bid = -1;
      } else if (rest.in === 'held' && rest.bytes.length > 0) {
        d.early = rest.bytes;
        d.length = rest.bytes.length;
        d.sent = 0;
        d.bytes += rest.bytes.length;
      }
    }
    if (bid >= 0) this.giveBack(bid);
    this.options.decided?.(pair, step);
  }

  /**
   * Bytes that go upstream before anything else (a PROXY header), ahead of the first bytes held:
   * both in one copy (a buffer holding them goes back at once). Not counted as the client's.
   */
  prependUp(pair: P, bytes: Buffer): void {
    const d = pair.up;
    let held: Buffer = Buffer.alloc(0);
    if (d.early) held = d.early.subarray(d.sent);
    else if (d.bid >= 0) {
      const at = d.bid * this.buffers.size;
      held = Buffer.from(this.memory.subarray(at + d.sent, at + d.length));
      this.giveBack(d.bid);
      d.bid = -1;
    }
    d.early = Buffer.concat([bytes, held]);
    d.length = d.early.length;
    d.sent = 0;
  }

  // ---- relay ----------------------------------------------------------------------------------

  /**
   * The pair is connected: relay both ways, the first bytes held for upstream going first. With
   * `delayedAck` (the upstream socket's setup said TCP_QUICKACK 0 for them) their send carries the
   * handshake's last ACK, and quick ACKs are back on right behind it (at submission, after the
   * send): left delaying, a server that writes a reply in small pieces without TCP_NODELAY would
   * wait for our ACK (Nagle: 40 ms or more), and one that answers and closes would probe its FIN
   * again (a tail loss probe, a few ms) while our ACK waited for our FIN.
   */
  start(pair: P, delayedAck = false): void {
    if (holdsFirstBytes(pair)) {
      this.sendRest(pair, pair.up, 'upstream');
      if (delayedAck) this.ring.setsockopt(pair.ufd, C.IPPROTO_TCP, C.TCP_QUICKACK, this.oneAddress, 4, RelayOp.Finish, pair.id, U.IOSQE_CQE_SKIP_SUCCESS);
    } else this.recv(pair, 'client');
    // Bytes of the server's that came with an upstream proxy's last reply go to the client first.
    if (pair.down.early) this.sendRest(pair, pair.down, 'client');
    else this.recv(pair, 'upstream');
  }

  private recv(pair: P, from: 'client' | 'upstream'): void {
    pair.pending++;
    const fd = from === 'client' ? pair.cfd : pair.ufd;
    const big = this.big;
    if (big && (from === 'client' ? pair.up : pair.down).busy) this.ring.recvSelect(fd, big.group, big.size, from === 'client' ? RelayOp.RecvClientBig : RelayOp.RecvUpstreamBig, pair.id);
    else this.ring.recvSelect(fd, this.options.group, this.options.bufferBytes, from === 'client' ? RelayOp.RecvClient : RelayOp.RecvUpstream, pair.id);
  }

  private onRecv(pair: P, d: RelayDirection, from: 'client' | 'upstream', res: number, flags: number, big: boolean): void {
    if (res === -C.ECANCELED && d.cancelled > 0) {
      // Linked to a send that went short: the send goes on (sendRest queued another recv with it).
      d.cancelled--;
      return;
    }
    if (res > 0) {
      const bid = flags >>> U.IORING_CQE_BUFFER_SHIFT;
      (big ? this.big! : this.buffers).taken();
      d.big = big;
      d.busy = res >= this.options.bufferBytes;
      d.bid = bid;
      d.length = res;
      d.sent = 0;
      d.bytes += res;
      pair.lastActive = this.now();
      // More to read: if it is the FIN, it goes in the segment of these bytes.
      if ((flags & U.IORING_CQE_F_SOCK_NONEMPTY) !== 0) this.readAhead(d, from === 'client' ? pair.cfd : pair.ufd);
      this.sendRest(pair, d, from === 'client' ? 'upstream' : 'client');
      return;
    }
    if (res === 0) {
      d.eof = true;
      this.passFin(pair, d, from === 'client' ? pair.ufd : pair.cfd);
      return;
    }
    if (res === -C.ENOBUFS && big) {
      // No big buffer free: a small one.
      d.busy = false;
      this.recv(pair, from);
      return;
    }
    if (res === -C.ENOBUFS) {
      // Every buffer is lent: this direction waits for one to come back.
      d.starved = true;
      this.starved.push(pair);
      return;
    }
    this.options.end(pair, `${from}-${errnoName(-res)}`);
  }

  /**
   * The recv said its socket had more to read (bytes or the FIN): read it now, without waiting,
   * into the rest of the buffer, before the bytes are sent. A FIN found so is sent with them: the
   * send says MSG_MORE (TCP holds the last part segment) and the FIN follows its completion,
   * joining that segment (one packet, and one ACK back, instead of two each: a server closing
   * after its response does so on every connection). An error found so ends the pair once the
   * bytes went, as the next recv would have (it takes the error: a later recv would find none).
   */
  private readAhead(d: RelayDirection, fd: number): void {
    const size = d.big ? this.big!.size : this.buffers.size;
    const room = size - d.length;
    if (room <= 0) return;
    const at = d.bid * size + d.length;
    const n = this.libc.recv(fd, (d.big ? this.bigMemory! : this.memory).subarray(at, at + room), room, C.MSG_DONTWAIT);
    if (n > 0) {
      d.length += n;
      d.bytes += n;
      d.busy = d.length >= this.options.bufferBytes;
    } else if (n === 0) d.eof = true;
    else {
      const errno = this.libc.errno();
      if (errno !== C.EAGAIN && errno !== C.EINTR) d.failed = errno;
    }
  }

  /**
   * Send what is left of the direction's bytes to `to`, the source's next recv linked behind it
   * (none when its FIN or error is known already: that follows the send's completion).
   */
  private sendRest(pair: P, d: RelayDirection, to: 'client' | 'upstream'): void {
    pair.pending++;
    const address = (d.early ? Number(this.libc.address(d.early)) : (d.big ? this.big! : this.buffers).pointer(d.bid)) + d.sent;
    const fd = to === 'upstream' ? pair.ufd : pair.cfd;
    const kind = to === 'upstream' ? RelayOp.SendUpstream : RelayOp.SendClient;
    if (d.eof || d.failed !== 0) {
      this.ring.send(fd, address, d.length - d.sent, d.eof ? C.MSG_WAITALL | C.MSG_MORE : C.MSG_WAITALL, kind, pair.id);
      return;
    }
    // A chain split by a submission would be cut there.
    this.ring.reserve(2);
    this.ring.send(fd, address, d.length - d.sent, C.MSG_WAITALL, kind, pair.id, U.IOSQE_IO_LINK);
    this.recv(pair, to === 'upstream' ? 'client' : 'upstream');
  }

  private onSent(pair: P, d: RelayDirection, to: 'client' | 'upstream', res: number): void {
    if (res < 0) {
      // The recv linked to it comes back ECANCELED to a pair gone.
      this.options.end(pair, `${to}-${errnoName(-res)}`);
      return;
    }
    d.sent += res;
    const linked = !d.eof && d.failed === 0;
    if (d.sent < d.length) {
      // MSG_WAITALL: short only when the socket failed part way; the linked recv was cancelled.
      if (linked) d.cancelled++;
      this.sendRest(pair, d, to);
      return;
    }
    if (d.early) d.early = undefined;
    else this.giveBackHeld(d);
    d.bid = -1;
    // The source's next recv was linked to this send: the kernel issued it already. Else its FIN
    // (or error), read ahead, follows now.
    if (linked) return;
    if (d.failed !== 0) this.options.end(pair, `${to === 'upstream' ? 'client' : 'upstream'}-${errnoName(d.failed)}`);
    else this.passFin(pair, d, to === 'upstream' ? pair.ufd : pair.cfd);
  }

  /** The source's FIN, after everything before it was sent: SHUT_WR on the sink, or the end. */
  private passFin(pair: P, d: RelayDirection, sink: number): void {
    d.shut = true;
    const other = d === pair.up ? pair.down : pair.up;
    if (other.shut) {
      this.options.end(pair, 'done', sink);
      return;
    }
    // SO_LINGER matters to close() only: through the ring it can go with the next submission.
    // The FIN itself stays a synchronous call: IORING_OP_SHUTDOWN always runs in an io-wq
    // worker thread (a wake-up per FIN), and looks its descriptor up there, late enough for a
    // close queued after it to run first and a new socket to take the number.
    if (this.options.ringSockets) this.lingerOffThroughRing(pair, sink);
    else this.libc.setsockopt(sink, C.SOL_SOCKET, C.SO_LINGER, this.noLinger, 8);
    this.libc.shutdown(sink, C.SHUT_WR);
  }

  /**
   * SO_LINGER {0, 0} on `fd`, through the ring. Not linked to the close that follows: the kernel
   * issues a linked SQE later (as task work, after the rest of the submission) and looks its
   * descriptor up then; unlinked, the setsockopt and the closes run inline, in queue order, at
   * submission. Their results went unread when they were synchronous calls, too.
   */
  private lingerOffThroughRing(pair: P, fd: number): void {
    this.ring.setsockopt(fd, C.SOL_SOCKET, C.SO_LINGER, this.lingerOffAddress, 8, RelayOp.Finish, pair.id, U.IOSQE_CQE_SKIP_SUCCESS);
  }

  /** A completion (of `kind`) carrying a buffer for a pair already gone: the buffer goes back. */
  giveBackFlags(flags: number, kind = 0): void {
    if ((flags & U.IORING_CQE_F_BUFFER) === 0) return;
    const bid = flags >>> U.IORING_CQE_BUFFER_SHIFT;
    if (kind === RelayOp.RecvClientBig || kind === RelayOp.RecvUpstreamBig) {
      this.big!.taken();
      this.big!.giveBack(bid);
    } else this.giveBack(bid);
  }

  /** The buffer a direction holds goes back to its ring. */
  private giveBackHeld(d: RelayDirection): void {
    if (d.big) this.big!.giveBack(d.bid);
    else this.giveBack(d.bid);
    d.big = false;
  }

  giveBack(bid: number): void {
    this.buffers.giveBack(bid);
    // A direction that found the ring empty gets its recv again.
    while (this.starved.length > 0) {
      const pair = this.starved.shift();
      if (!pair || pair.closed) continue;
      if (pair.first) {
        pair.up.starved = false;
        this.recvFirst(pair);
        return;
      }
      for (const [d, from] of [[pair.up, 'client'], [pair.down, 'upstream']] as const) {
        if (!d.starved) continue;
        d.starved = false;
        this.recv(pair, from);
      }
      return;
    }
  }

  /**
   * Close the pair's descriptors `fds` (`reason` 'done': orderly, else reset) and give back the
   * buffers it holds. `lastFin`: an orderly end, the descriptor whose SO_LINGER goes off before it
   * closes (the other one's went off with its FIN). Through the ring when nothing of the pair is in
   * flight: SO_LINGER off, then the closes, in this order with the next submission.
   */
  closeSockets(pair: P, fds: readonly number[], reason: string, lastFin?: number): void {
    if (lastFin !== undefined && this.options.ringSockets && pair.pending === 0) {
      this.lingerOffThroughRing(pair, lastFin);
      this.ring.closeFd(lastFin, RelayOp.Finish, pair.id, U.IOSQE_CQE_SKIP_SUCCESS);
      for (let i = 0; i < fds.length; i++) if (fds[i] !== lastFin) this.ring.closeFd(fds[i]!, RelayOp.Finish, pair.id, U.IOSQE_CQE_SKIP_SUCCESS);
    } else {
      if (lastFin !== undefined) this.libc.setsockopt(lastFin, C.SOL_SOCKET, C.SO_LINGER, this.noLinger, 8);
      // SQEs queued this turn may name these descriptors: submitted after a close() here, they
      // would act on whatever socket gets the number next (a shutdown queued for this flow, run
      // on the next flow's new upstream socket, left it unable to send). So they go first.
      if (this.ring.queued > 0) this.ring.submit(0, -1);
      // Operations still pending hold the sockets: cancel them first, or close() would not close.
      if (pair.pending > 0) for (const fd of fds) this.ring.cancelFdNow(fd);
      for (const fd of fds) {
        if (reason === 'done') this.libc.close(fd);
        else this.api.resetClose(fd);
      }
    }
    this.releaseHeld(pair);
  }

  /** Give back what the pair holds (a buffer per direction, first bytes kept for upstream): it will send none of it. */
  releaseHeld(pair: P): void {
    this.releaseDirection(pair.up);
    this.releaseDirection(pair.down);
  }

  private releaseDirection(d: RelayDirection): void {
    if (d.bid >= 0) this.giveBackHeld(d);
    d.bid = -1;
    d.early = undefined;
  }
}

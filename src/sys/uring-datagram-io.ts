/**
 * The uring engine of the UDP loop (datagram-io.ts): one multishot recvmsg per socket takes each
 * datagram into a buffer of a provided buffer ring as it arrives, with its source (msg_name) and
 * control messages (the original destination, the DSCP) in front of it; sends are SEND SQEs
 * straight from those buffers (no copy); one io_uring_enter per loop turn submits every queued
 * send and (re)armed receive and waits for completions.
 *
 * A buffer goes back to the kernel when the turn is done with it and no send of it is in flight.
 * A multishot receive that ends (no buffer left: ENOBUFS, or a socket error) is armed again on the
 * next turn. Before a socket closes (forget) whatever is queued is submitted, so its sends leave
 * first, and its receive is cancelled synchronously and the ring's task work run, so the kernel
 * holds no reference to the socket when it is closed (a new session's socket bound to the same
 * addresses gets the flow's datagrams at once) and no late completion can be taken for a
 * socket that reuses the descriptor number; a completion of an earlier receive carries an id no
 * longer in use and only gives its buffer back. A failed send is reported by descriptor only while
 * the socket it was queued on is still the one watched under that number.
 */
import koffi from 'koffi';
import { decodeControlMessages, originalDestination, ORIGDSTADDR_CONTROL_SPACE } from '../core/net/cmsg.js';
import { MSG_DONTWAIT, MSG_TRUNC } from '../core/net/constants.js';
import { dscpOfControlMessages } from '../core/net/ip-header.js';
import { IORING_CQE_BUFFER_SHIFT, IORING_CQE_F_BUFFER, IORING_CQE_F_MORE, RECVMSG_OUT } from '../core/net/io-uring.js';
import { MSGHDR_SIZE, writeMsghdr } from '../core/net/msghdr.js';
import { decodeSockaddr, encodeSockaddr, SOCKADDR_IN6_SIZE, type Endpoint } from '../core/net/sockaddr.js';
import type { PinnedSockaddr, SendTarget } from './datagram-batch.js';
import type { DatagramIo, SendFailure } from './datagram-io.js';
import type { Epoll } from './epoll.js';
import { type BufferRing, IoUring, type RingResources } from './io-uring.js';

const KIND_RECV = 1;
const KIND_SEND = 2;
const KIND_POLL = 3;
const POLLIN = 0x1;
const ECANCELED = 125;
const NAME_SPACE = SOCKADDR_IN6_SIZE;
const CONTROL_SPACE = ORIGDSTADDR_CONTROL_SPACE;
/** Where the payload starts in each buffer. */
const PAYLOAD_AT = RECVMSG_OUT.size + NAME_SPACE + CONTROL_SPACE;
const GROUP = 1;

/** What this engine holds in the kernel: its ring (with the buffer ring's mappings) and the epoll it polls. */
export interface UringDatagramIoResources {
  readonly ring: RingResources;
  readonly epollFd: number;
}

export interface UringDatagramIoOptions {
  /** The largest datagram kept whole (longer ones are truncated and dropped). */
  readonly maxDatagramBytes: number;
  /** Receive buffers lent to the kernel (a power of two): datagrams taken per turn at most. */
  readonly buffers: number;
  /** SQ entries (the CQ has four times as many). */
  readonly entries: number;
}

export class UringDatagramIo implements DatagramIo {
  readonly lengths: Int32Array;
  onSendFailed: SendFailure = () => undefined;
  /** Called first thing in close(), before anything is closed (the loop's record of its ring is cleared there). */
  onClose: () => void = () => undefined;
  private readonly uring: IoUring;
  private readonly ring: BufferRing;
  private readonly memory: Buffer;
  /** Per buffer: where its payload and its name (msg_name) are, for send SQEs. */
  private readonly payloadAddress: bigint[];
  private readonly nameAddress: bigint[];
  private readonly size: number;
  private readonly msghdr = Buffer.alloc(MSGHDR_SIZE);
  private readonly msghdrAddress: bigint;
  /** Watched descriptors and the number of their watch (a later socket under the same number gets another). */
  private readonly watched = new Map<number, number>();
  private watches = 0;
  /** Receives in the kernel: id -> descriptor, and descriptor -> id. */
  private readonly armed = new Map<number, number>();
  private readonly armOf = new Map<number, number>();
  private nextArm = 1;
  /** Descriptors whose receive is (re)armed on the next turn. */
  private readonly toArm = new Set<number>();
  private epollArmed = false;
  /** Sends whose completion has not been read yet (each gives a buffer back). */
  private sendsInFlight = 0;
  /** Buffers taken per descriptor this turn, in arrival order, and a receive error per descriptor. */
  private readonly pending = new Map<number, number[]>();
  private readonly errors = new Map<number, number>();
  private readonly ready: number[] = [];
  private readonly readyEvts: number[] = [];
  private readonly failures: { fd: number; errno: number }[] = [];
  /** The last receive: its buffers and where each one's parts are. */
  private readonly batch: Int32Array;
  private batchCount = 0;
  private readonly nameLengths: Int32Array;
  private readonly controlLengths: Int32Array;
  private readonly flags: Int32Array;
  /** Per buffer: sends in flight, whether the last receive holds it, and its last send's socket. */
  private readonly inFlight: Uint16Array;
  private readonly inBatch: Uint8Array;
  private readonly sendFd: Int32Array;
  private readonly sendWatch: Float64Array;

  constructor(
    readonly epoll: Epoll,
    options: UringDatagramIoOptions,
  ) {
    this.uring = new IoUring(options.entries);
    this.size = PAYLOAD_AT + options.maxDatagramBytes;
    try {
      this.ring = this.uring.bufferRing(GROUP, options.buffers, this.size);
    } catch (error) {
      this.uring.close();
      throw error;
    }
    this.memory = this.ring.memory();
    this.payloadAddress = Array.from({ length: options.buffers }, (_, bid) => this.ring.address(bid) + BigInt(PAYLOAD_AT));
    this.nameAddress = Array.from({ length: options.buffers }, (_, bid) => this.ring.address(bid) + BigInt(RECVMSG_OUT.size));
    const n = options.buffers;
    this.lengths = new Int32Array(n);
    this.batch = new Int32Array(n);
    this.nameLengths = new Int32Array(n);
    this.controlLengths = new Int32Array(n);
    this.flags = new Int32Array(n);
    this.inFlight = new Uint16Array(n);
    this.inBatch = new Uint8Array(n);
    this.sendFd = new Int32Array(n);
    this.sendWatch = new Float64Array(n);
    writeMsghdr(this.msghdr, { nameAddress: 0n, nameLength: NAME_SPACE, iovAddress: 0n, iovCount: 0, controlAddress: 0n, controlLength: CONTROL_SPACE });
    this.msghdrAddress = koffi.address(this.msghdr);
  }

  /** The ring's descriptor and mappings and the epoll's descriptor, for an owner that outlives this thread. */
  resources(): UringDatagramIoResources {
    const ring = this.uring.resources();
    return { ring: { fd: ring.fd, mappings: [...ring.mappings, ...this.ring.mappings()] }, epollFd: this.epoll.fd };
  }

  /** io_uring_enter calls so far. */
  get waits(): number {
    return this.uring.enters;
  }

  watch(fd: number): void {
    this.watched.set(fd, ++this.watches);
    this.toArm.add(fd);
  }

  forget(fd: number): void {
    if (!this.watched.delete(fd)) return;
    this.toArm.delete(fd);
    this.errors.delete(fd);
    const taken = this.pending.get(fd);
    if (taken) {
      this.pending.delete(fd);
      for (const bid of taken) this.ring.giveBack(bid);
    }
    // Its queued sends leave before it closes (as the epoll engine's already did).
    if (this.uring.queued > 0) this.uring.submit(0, -1);
    const id = this.armOf.get(fd);
    if (id === undefined) return;
    this.armOf.delete(fd);
    this.armed.delete(id);
    // The cancelled receive still holds the socket until the ring's task work runs (DEFER_TASKRUN):
    // run it now, or the caller's close() leaves a socket bound (and, for a reply socket, connected
    // to the client) that takes the flow's next datagrams until the next turn, where they are lost.
    if (this.uring.cancelFdNow(fd) > 0) this.uring.runTaskWork();
  }

  wait(timeoutMs: number): number {
    this.release();
    this.ready.length = 0;
    this.readyEvts.length = 0;
    for (const fd of this.toArm) this.arm(fd);
    this.toArm.clear();
    if (!this.epollArmed) {
      this.uring.pollMultishot(this.epoll.fd, POLLIN, KIND_POLL, 0);
      this.epollArmed = true;
    }
    // Sends complete as they are submitted (MSG_DONTWAIT): waiting for one completion more than
    // their count waits for traffic, where 1 would return at once with only the sends' completions.
    this.uring.submit(timeoutMs > 0 ? this.sendsInFlight + 1 : 0, timeoutMs);
    this.harvest();
    if (this.failures.length > 0) {
      const failures = this.failures.splice(0);
      for (const f of failures) this.onSendFailed(f.fd, f.errno, 1);
    }
    return this.ready.length;
  }

  private arm(fd: number): void {
    const id = this.nextArm;
    this.nextArm = (this.nextArm % 0x7fffffff) + 1;
    this.armed.set(id, fd);
    this.armOf.set(fd, id);
    this.uring.recvmsgMultishot(fd, this.msghdrAddress, GROUP, KIND_RECV, id);
  }

  private markReady(fd: number, events: number): void {
    this.ready.push(fd);
    this.readyEvts.push(events);
  }

  private harvest(): void {
    const c = this.uring.completion;
    while (this.uring.next()) {
      if (c.kind === KIND_RECV) this.received(c.id, c.res, c.flags);
      else if (c.kind === KIND_SEND) this.sent(c.id, c.res);
      else if (c.kind === KIND_POLL) {
        if ((c.flags & IORING_CQE_F_MORE) === 0) this.epollArmed = false;
        const n = this.epoll.wait(0);
        for (let i = 0; i < n; i++) this.markReady(this.epoll.readyFd(i), this.epoll.readyEvents(i));
      }
    }
  }

  private received(id: number, res: number, flags: number): void {
    const bid = (flags & IORING_CQE_F_BUFFER) !== 0 ? flags >>> IORING_CQE_BUFFER_SHIFT : -1;
    if (bid >= 0) this.ring.taken();
    const fd = this.armed.get(id);
    if (fd === undefined) {
      // A receive of a socket forgotten since: only its buffer matters.
      if (bid >= 0) this.ring.giveBack(bid);
      return;
    }
    if ((flags & IORING_CQE_F_MORE) === 0) {
      this.armed.delete(id);
      this.armOf.delete(fd);
      if (res !== -ECANCELED) this.toArm.add(fd);
    }
    if (res < 0) {
      // ENOBUFS: every buffer is out (armed again next turn, the datagram waits in the socket).
      if (res === -105 || res === -ECANCELED) return;
      if (!this.pending.has(fd) && !this.errors.has(fd)) this.markReady(fd, POLLIN);
      this.errors.set(fd, -res);
      return;
    }
    if (bid < 0) return;
    let taken = this.pending.get(fd);
    if (!taken) {
      taken = [];
      this.pending.set(fd, taken);
      if (!this.errors.has(fd)) this.markReady(fd, POLLIN);
    }
    taken.push(bid);
  }

  private sent(bid: number, res: number): void {
    this.sendsInFlight--;
    const left = --this.inFlight[bid]!;
    if (left === 0 && this.inBatch[bid] === 0) this.ring.giveBack(bid);
    if (res >= 0) return;
    const fd = this.sendFd[bid]!;
    if (this.watched.get(fd) === this.sendWatch[bid]) this.failures.push({ fd, errno: -res });
  }

  readyFd(i: number): number {
    return this.ready[i] ?? -1;
  }

  readyEvents(i: number): number {
    return this.readyEvts[i] ?? 0;
  }

  /** The buffers of the last receive go back unless a send of theirs is in flight. */
  private release(): void {
    for (let i = 0; i < this.batchCount; i++) {
      const bid = this.batch[i]!;
      this.inBatch[bid] = 0;
      if (this.inFlight[bid] === 0) this.ring.giveBack(bid);
    }
    this.batchCount = 0;
  }

  receive(fd: number): number {
    this.release();
    const errno = this.errors.get(fd);
    if (errno !== undefined) {
      this.errors.delete(fd);
      const taken = this.pending.get(fd);
      this.pending.delete(fd);
      if (taken) for (const bid of taken) this.ring.giveBack(bid);
      return -errno;
    }
    const taken = this.pending.get(fd);
    if (!taken) return 0;
    this.pending.delete(fd);
    const m = this.memory;
    const room = this.size - PAYLOAD_AT;
    for (let i = 0; i < taken.length; i++) {
      const bid = taken[i]!;
      const at = bid * this.size;
      this.batch[i] = bid;
      this.inBatch[bid] = 1;
      this.nameLengths[i] = m.readUInt32LE(at + RECVMSG_OUT.nameLength);
      this.controlLengths[i] = m.readUInt32LE(at + RECVMSG_OUT.controlLength);
      this.flags[i] = m.readUInt32LE(at + RECVMSG_OUT.flags);
      this.lengths[i] = Math.min(m.readUInt32LE(at + RECVMSG_OUT.payloadLength), room);
    }
    this.batchCount = taken.length;
    return taken.length;
  }

  slot(i: number): Buffer {
    const at = this.batch[i]! * this.size + PAYLOAD_AT;
    return this.memory.subarray(at, at + (this.lengths[i] ?? 0));
  }

  truncated(i: number): boolean {
    return ((this.flags[i] ?? 0) & MSG_TRUNC) !== 0;
  }

  private nameAt(i: number): number {
    return this.batch[i]! * this.size + RECVMSG_OUT.size;
  }

  source(i: number): Endpoint {
    const at = this.nameAt(i);
    const length = Math.min(this.nameLengths[i] ?? 0, NAME_SPACE);
    return decodeSockaddr(this.memory.subarray(at, at + length), length);
  }

  sourceIs(i: number, sockaddr: Buffer): boolean {
    const at = this.nameAt(i);
    const n = this.memory;
    if (n[at] !== sockaddr[0] || n[at + 2] !== sockaddr[2] || n[at + 3] !== sockaddr[3]) return false;
    const [from, to] = sockaddr.length === SOCKADDR_IN6_SIZE ? [8, 24] : [4, 8];
    return n.compare(sockaddr, from, to, at + from, at + to) === 0;
  }

  private controls(i: number): Buffer | undefined {
    const length = Math.min(this.controlLengths[i] ?? 0, CONTROL_SPACE);
    if (length === 0) return undefined;
    const at = this.nameAt(i) + NAME_SPACE;
    return this.memory.subarray(at, at + length);
  }

  originalDestination(i: number): Endpoint | undefined {
    const c = this.controls(i);
    return c ? originalDestination(decodeControlMessages(c, c.length)) : undefined;
  }

  dscp(i: number): number | undefined {
    const c = this.controls(i);
    return c ? dscpOfControlMessages(decodeControlMessages(c, c.length)) : undefined;
  }

  pin(endpoint: Endpoint): PinnedSockaddr {
    const sockaddr = encodeSockaddr(endpoint);
    return { sockaddr, address: koffi.address(sockaddr) };
  }

  /** Queued: they leave with the next turn's io_uring_enter (failures come back through onSendFailed). */
  send(fd: number, from: number, count: number, to: SendTarget): number {
    const watch = this.watched.get(fd) ?? 0;
    for (let i = from; i < from + count; i++) {
      const bid = this.batch[i]!;
      const data = this.payloadAddress[bid]!;
      let target = 0n;
      let targetLength = 0;
      if (to === 'source') {
        target = this.nameAddress[bid]!;
        targetLength = this.nameLengths[i] ?? 0;
      } else if (to !== null) {
        target = to.address;
        targetLength = to.sockaddr.length;
      }
      this.uring.sendTo(fd, data, this.lengths[i] ?? 0, MSG_DONTWAIT, target, targetLength, KIND_SEND, bid);
      this.inFlight[bid]!++;
      this.sendsInFlight++;
      this.sendFd[bid] = fd;
      this.sendWatch[bid] = watch;
    }
    return count;
  }

  close(): void {
    this.onClose();
    this.release();
    for (const fd of [...this.watched.keys()]) this.forget(fd);
    this.uring.cancelFdNow(this.epoll.fd);
    if (this.uring.queued > 0) this.uring.submit(0, -1);
    this.uring.close();
    this.ring.close();
    this.epoll.close();
  }
}

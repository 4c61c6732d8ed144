/**
 * The sockets one UDP loop opened and has not closed, in shared memory (a bit per descriptor
 * number), so its owner (relay.ts) can close them once the loop's thread has exited without doing
 * it (terminated after the stop timeout, or a shutdown that threw half-way). Left open, a dead
 * loop's sockets would stay for the life of the process: its connected reply and upstream sockets
 * would go on taking their flows' datagrams (the kernel's lookup prefers a connected socket), which
 * nobody reads, after the UDP side is started again.
 *
 * A descriptor is recorded after socket() returned it and cleared before close(): a thread
 * terminated between the two leaves one socket open, and never makes its owner close a descriptor
 * number that another thread may have been given since. The listeners are the owner's, never here.
 *
 * The io_uring engine's ring is recorded too (its descriptor, its mappings, the epoll it polls),
 * after it is set up and cleared first thing when the engine closes: the requests of a dead loop's
 * ring hold its sockets, so closing their descriptors alone would leave them alive in the kernel
 * (taking their flows' datagrams) until the process exits; the owner tears the ring down as well
 * (sys/io-uring.ts releaseAbandonedRing). The raw reply sockets are not recorded (see relay.ts).
 */
import { SocketApi, type SocketOptions } from '../../sys/socket.js';
import type { Libc } from '../../sys/libc.js';
import type { DatagramIo, UdpEngineKind } from '../../sys/datagram-io.js';
import type { RingMapping } from '../../sys/io-uring.js';
import { UringDatagramIo, type UringDatagramIoResources } from '../../sys/uring-datagram-io.js';

/** Descriptor numbers recorded at most (a bit each: 2 MiB); a socket above is left open if the loop dies. */
const MAX_RECORDED_FD = 1 << 24;
/** The ring's record, before the bits: set flag, ring fd, epoll fd, mapping count, then address, length, kernelWrites per mapping. */
const RING_HEADER = 4;
const RING_MAPPINGS = 4;
const RING_SLOTS = RING_HEADER + 3 * RING_MAPPINGS;
const RING_BYTES = RING_SLOTS * BigInt64Array.BYTES_PER_ELEMENT;

export class LoopSockets {
  private readonly bits: Int32Array;
  private readonly ring: BigInt64Array;

  private constructor(readonly buffer: SharedArrayBuffer) {
    this.ring = new BigInt64Array(buffer, 0, RING_SLOTS);
    this.bits = new Int32Array(buffer, RING_BYTES);
  }

  /** Room for descriptor numbers below `limit` (the soft RLIMIT_NOFILE: none is ever higher), and for one ring. */
  static create(limit: number): LoopSockets {
    const n = Math.max(1, Math.min(MAX_RECORDED_FD, Math.floor(limit)));
    return new LoopSockets(new SharedArrayBuffer(RING_BYTES + Math.ceil(n / 32) * Int32Array.BYTES_PER_ELEMENT));
  }

  /** The same record, from the loop's thread. */
  static attach(buffer: SharedArrayBuffer): LoopSockets {
    return new LoopSockets(buffer);
  }

  opened(fd: number): void {
    if (fd >= 0 && fd >> 5 < this.bits.length) Atomics.or(this.bits, fd >> 5, 1 << (fd & 31));
  }

  closing(fd: number): void {
    if (fd >= 0 && fd >> 5 < this.bits.length) Atomics.and(this.bits, fd >> 5, ~(1 << (fd & 31)));
  }

  /** Every descriptor recorded, the record cleared (the owner closes them: the loop's thread is gone). */
  take(): number[] {
    const fds: number[] = [];
    for (let word = 0; word < this.bits.length; word++) {
      const bits = Atomics.exchange(this.bits, word, 0);
      if (bits === 0) continue;
      for (let bit = 0; bit < 32; bit++) if ((bits >>> bit) & 1) fds.push(word * 32 + bit);
    }
    return fds;
  }

  /** The engine's ring is set up (its fields first, the flag last). */
  ringOpened(r: UringDatagramIoResources): void {
    const mappings = r.ring.mappings.slice(0, RING_MAPPINGS);
    Atomics.store(this.ring, 1, BigInt(r.ring.fd));
    Atomics.store(this.ring, 2, BigInt(r.epollFd));
    Atomics.store(this.ring, 3, BigInt(mappings.length));
    mappings.forEach((m, i) => {
      const at = RING_HEADER + 3 * i;
      Atomics.store(this.ring, at, m.address);
      Atomics.store(this.ring, at + 1, BigInt(m.length));
      Atomics.store(this.ring, at + 2, m.kernelWrites ? 1n : 0n);
    });
    Atomics.store(this.ring, 0, 1n);
  }

  /** The engine closes its ring itself. */
  ringClosing(): void {
    Atomics.store(this.ring, 0, 0n);
  }

  /** The ring recorded, the record cleared (the owner tears it down: the loop's thread is gone). */
  takeRing(): UringDatagramIoResources | undefined {
    if (Atomics.exchange(this.ring, 0, 0n) !== 1n) return undefined;
    const mappings: RingMapping[] = [];
    const count = Number(Atomics.load(this.ring, 3));
    for (let i = 0; i < count; i++) {
      const at = RING_HEADER + 3 * i;
      mappings.push({ address: Atomics.load(this.ring, at), length: Number(Atomics.load(this.ring, at + 1)), kernelWrites: Atomics.load(this.ring, at + 2) === 1n });
    }
    return { ring: { fd: Number(Atomics.load(this.ring, 1)), mappings }, epollFd: Number(Atomics.load(this.ring, 2)) };
  }
}

/** The loop's SocketApi: every socket it opens and closes is recorded in `record` as well. */
export class RecordedSocketApi extends SocketApi {
  constructor(
    private readonly record: LoopSockets,
    libc?: Libc,
  ) {
    super(libc);
  }

  override open(options: SocketOptions): number {
    const fd = super.open(options);
    this.record.opened(fd);
    return fd;
  }

  override close(fd: number): void {
    this.record.closing(fd);
    super.close(fd);
  }

  /** With uring, the ring is recorded once set up and cleared when the engine closes it. */
  override datagramIo(engine: UdpEngineKind, capacity: number, slotBytes: number): DatagramIo {
    const io = super.datagramIo(engine, capacity, slotBytes);
    if (io instanceof UringDatagramIo) {
      this.record.ringOpened(io.resources());
      io.onClose = () => this.record.ringClosing();
    }
    return io;
  }
}

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
 * The io_uring engine's ring and the raw reply sockets are not recorded (see relay.ts); with that
 * engine the dead loop's ring, still mapped in the process, keeps the closed sockets alive in the
 * kernel until the process exits (its requests hold them), so there this frees descriptor numbers only.
 */
import { SocketApi, type SocketOptions } from '../../sys/socket.js';
import type { Libc } from '../../sys/libc.js';

/** Descriptor numbers recorded at most (a bit each: 2 MiB); a socket above is left open if the loop dies. */
const MAX_RECORDED_FD = 1 << 24;

export class LoopSockets {
  private readonly bits: Int32Array;

  private constructor(readonly buffer: SharedArrayBuffer) {
    this.bits = new Int32Array(buffer);
  }

  /** Room for descriptor numbers below `limit` (the soft RLIMIT_NOFILE: none is ever higher). */
  static create(limit: number): LoopSockets {
    const n = Math.max(1, Math.min(MAX_RECORDED_FD, Math.floor(limit)));
    return new LoopSockets(new SharedArrayBuffer(Math.ceil(n / 32) * Int32Array.BYTES_PER_ELEMENT));
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
}

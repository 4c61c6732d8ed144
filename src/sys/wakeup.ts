/**
 * An eventfd that one thread writes to end another thread's epoll_wait: a loop that watches it can
 * block long (IDLE_WAIT_MAX_MS) while nothing of its own is timed, and still take its owner's messages
 * and stop at once. The owner creates and closes it; the loop's thread only drains it.
 */
import { TproxyError } from '../core/errors.js';
import { errnoName } from '../core/errno.js';
import * as C from '../core/net/constants.js';
import { loadLibc, type Libc } from './libc.js';

export class Wakeup {
  private readonly one = Buffer.alloc(8);
  private readonly sink = Buffer.alloc(8);
  private closed = false;

  private constructor(
    readonly fd: number,
    private readonly libc: Libc,
  ) {
    this.one.writeBigUInt64LE(1n, 0);
  }

  /** A new eventfd (non-blocking, close-on-exec), owned by the caller. */
  static create(libc: Libc = loadLibc()): Wakeup {
    const fd = libc.eventfd(0, C.EFD_NONBLOCK | C.EFD_CLOEXEC);
    if (fd < 0) {
      const name = errnoName(libc.errno());
      throw new TproxyError('ERR_SYSCALL', `eventfd failed: ${name}: the process may be out of descriptors (raise the file limit)`, { call: 'eventfd', errno: name });
    }
    return new Wakeup(fd, libc);
  }

  /** The same eventfd seen from another thread (its own libc); it does not own it. */
  static attach(fd: number, libc: Libc = loadLibc()): Wakeup {
    return new Wakeup(fd, libc);
  }

  /** Wake the watching thread (its next or current epoll_wait returns). Nothing once closed. */
  signal(): void {
    if (!this.closed) this.libc.write(this.fd, this.one, 8);
  }

  /** Reset it after a wake-up (the watcher's side), so the next wait blocks again. */
  drain(): void {
    this.libc.read(this.fd, this.sink, 8);
  }

  /** Close it (the owner, once no thread watches it any more). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.libc.close(this.fd);
  }
}

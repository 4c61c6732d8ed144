/**
 * Pipes for the splice engine. A direction of a flow holds a pipe only while bytes are in flight:
 * it takes one to splice into and gives it back once the sink took everything, so an idle flow
 * costs its two sockets and no pipe (4 descriptors and ~11 KiB of kernel memory less). Empty pipes
 * are kept for the next flows: creating and sizing two per connection was most of its setup.
 */
import * as C from '../../../core/net/constants.js';
import type { Libc } from '../../../sys/libc.js';

/** The libc calls a pool makes (a fake in unit tests). */
export type PipeLibc = Pick<Libc, 'pipe2' | 'fcntl' | 'close'>;

/** Read and write ends; -1 when none is held. */
export interface PipeEnds {
  r: number;
  w: number;
}

/** Empty pipes kept at most. */
export const PIPE_POOL = 1024;

export class PipePool {
  private readonly idle: PipeEnds[] = [];
  private readonly fds = Buffer.alloc(8);
  /** Pipes held by directions (bytes in flight), not counting the pool. */
  private held = 0;
  /** Set while stopping: pipes given back are closed, not kept. */
  draining = false;

  constructor(
    private readonly libc: PipeLibc,
    /** F_SETPIPE_SZ of every new pipe. */
    private readonly pipeBytes: number,
    /** Pipes held plus pooled never exceed this (two per allowed flow: the descriptor budget). */
    private readonly maxPipes: number,
  ) {}

  get inUse(): number {
    return this.held;
  }

  get pooled(): number {
    return this.idle.length;
  }

  /** A pipe into `into`, from the pool or new; false (errno set) when none can be made. */
  take(into: PipeEnds): boolean {
    const pooled = this.idle.pop();
    if (pooled) {
      into.r = pooled.r;
      into.w = pooled.w;
    } else {
      if (this.libc.pipe2(this.fds, C.O_NONBLOCK | C.O_CLOEXEC) !== 0) return false;
      into.r = this.fds.readInt32LE(0);
      into.w = this.fds.readInt32LE(4);
      this.libc.fcntl(into.w, C.F_SETPIPE_SZ, this.pipeBytes);
    }
    this.held++;
    return true;
  }

  /** Give `from`'s pipe back: kept when `empty` and there is room, else closed. No-op without one. */
  release(from: PipeEnds, empty: boolean): void {
    if (from.r < 0) return;
    this.held--;
    const room = this.maxPipes - this.held - this.idle.length;
    if (empty && room > 0 && this.idle.length < PIPE_POOL && !this.draining) {
      this.idle.push({ r: from.r, w: from.w });
    } else {
      this.libc.close(from.r);
      this.libc.close(from.w);
    }
    from.r = -1;
    from.w = -1;
  }

  /** Close every pooled pipe (the engine stops). */
  closeIdle(): void {
    for (const p of this.idle.splice(0)) {
      this.libc.close(p.r);
      this.libc.close(p.w);
    }
  }
}

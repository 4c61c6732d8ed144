/**
 * Pipes for the splice engine. A direction of a flow holds a pipe only while bytes are in flight:
 * it takes one to splice into and gives it back once the sink took everything, so an idle flow
 * costs its two sockets and no pipe (4 descriptors and ~11 KiB of kernel memory less). Empty pipes
 * are kept for the next flows: creating and sizing two per connection was most of its setup.
 *
 * The pipes held never exceed the budget (capacity.ts: sharedPipes). A direction that finds the
 * budget spent waits in line (FIFO, at most one entry per direction, so at most two per flow): a
 * pipe given back goes straight to the first in line, and the waiter is handed to the engine to be
 * pumped (`woken`). Nobody takes a pipe past the line: while directions wait, the budget is spent.
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

/** `W`: what the engine wakes when a waiting direction got its pipe (its flow). */
export class PipePool<W = unknown> {
  private readonly idle: PipeEnds[] = [];
  private readonly fds = Buffer.alloc(8);
  /** Pipes held by directions (bytes in flight, or handed to a woken waiter), not counting the pool. */
  private held = 0;
  /** Directions waiting for a pipe, first in line first (a Map keeps insertion order). */
  private readonly line = new Map<PipeEnds, W>();
  /** Waiters that got a pipe since the engine last took them. */
  private woken: W[] = [];
  /** Set while stopping: pipes given back are closed, not kept. */
  draining = false;

  constructor(
    private readonly libc: PipeLibc,
    /** F_SETPIPE_SZ of every new pipe. */
    private readonly pipeBytes: number,
    /** Pipes held plus pooled never exceed this: the pipe budget (capacity.ts sharedPipes). */
    private readonly maxPipes: number,
  ) {}

  get inUse(): number {
    return this.held;
  }

  get pooled(): number {
    return this.idle.length;
  }

  /** Directions waiting for a pipe. */
  get waiting(): number {
    return this.line.size;
  }

  /** Every pipe of the budget is held (or directions are already waiting): a new taker waits. */
  get spent(): boolean {
    return this.held >= this.maxPipes || this.line.size > 0;
  }

  /** A pipe into `into`, from the pool or new; false (errno set) when none can be made. Check `spent` first. */
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

  /** `into` waits for a pipe; `waiter` is woken when it has one. Already in line: keeps its place. */
  wait(into: PipeEnds, waiter: W): void {
    if (!this.line.has(into)) this.line.set(into, waiter);
  }

  /** `into` no longer waits (its flow closed). */
  forget(into: PipeEnds): void {
    this.line.delete(into);
  }

  /** The waiters handed a pipe since the last call, in line order; the engine pumps them. */
  takeWoken(): W[] {
    if (this.woken.length === 0) return this.woken;
    const woken = this.woken;
    this.woken = [];
    return woken;
  }

  /**
   * Give `from`'s pipe back: to the first direction in line when one waits (a new pipe when this
   * one still holds bytes), else kept when `empty` and there is room, else closed. No-op without one.
   */
  release(from: PipeEnds, empty: boolean): void {
    if (from.r < 0) return;
    const first = this.firstInLine();
    if (first && empty) {
      // Straight to the waiter: still held, never pooled in between.
      const [into, waiter] = first;
      into.r = from.r;
      into.w = from.w;
      this.handed(into, waiter);
    } else {
      this.held--;
      const room = this.maxPipes - this.held - this.idle.length;
      if (empty && room > 0 && this.idle.length < PIPE_POOL && !this.draining) {
        this.idle.push({ r: from.r, w: from.w });
      } else {
        this.libc.close(from.r);
        this.libc.close(from.w);
      }
      // Bytes were left in it (the flow is being reset): the waiter gets a new pipe instead; if
      // none can be made now it keeps its place for the next pipe given back.
      if (first && this.take(first[0])) this.handed(first[0], first[1]);
    }
    from.r = -1;
    from.w = -1;
  }

  private firstInLine(): [PipeEnds, W] | undefined {
    for (const entry of this.line) return entry;
    return undefined;
  }

  private handed(into: PipeEnds, waiter: W): void {
    this.line.delete(into);
    this.woken.push(waiter);
  }

  /** Close every pooled pipe (the engine stops). */
  closeIdle(): void {
    for (const p of this.idle.splice(0)) {
      this.libc.close(p.r);
      this.libc.close(p.w);
    }
  }
}

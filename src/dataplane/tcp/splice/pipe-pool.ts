/**
 * Pipes for the splice engine. A direction of a flow holds a pipe only while bytes are in flight:
 * it takes one to splice into and gives it back once the sink took everything, so an idle flow
 * costs its two sockets and no pipe (4 descriptors and ~11 KiB of kernel memory less). Empty pipes
 * are kept for the next flows: creating and sizing two per connection was most of its setup.
 *
 * The budget (capacity.ts: sharedPipes) is counted in flows: a flow with bytes in flight holds a
 * slot of two pipes, so once one of its directions has a pipe the other always gets one too. A
 * direction could otherwise wait forever: a server that stops reading while its reply cannot get
 * through holds the request's pipe, and that pipe drains only once the reply moves. A direction of
 * a flow without a slot that finds every slot taken waits in line (FIFO, at most one entry per
 * direction): the slot of a flow that gives back its last pipe goes, with that pipe, straight to the
 * first in line, and the waiter is handed to the engine to be pumped (`woken`). Nobody takes a
 * slot past the line. Pipes held never exceed two per slot, so never the budget.
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
  /** Flows holding at least one pipe. */
  private slotsHeld = 0;
  private readonly maxSlots: number;
  /** Directions waiting for a pipe, first in line first (a Map keeps insertion order). */
  private readonly line = new Map<PipeEnds, W>();
  /** Waiters that got a pipe since the engine last took them. */
  private woken: W[] = [];
  /** Directions that joined the line since the pool was made (TcpCounters.pipeWaits). */
  waits = 0;
  /** Set while stopping: pipes given back are closed, not kept. */
  draining = false;

  constructor(
    private readonly libc: PipeLibc,
    /** F_SETPIPE_SZ of every new pipe. */
    private readonly pipeBytes: number,
    /** Pipes held plus pooled never exceed this: the pipe budget (capacity.ts sharedPipes), half as many slots. */
    private readonly maxPipes: number,
    /** Empty pipes kept at most. */
    private readonly maxIdle = PIPE_POOL,
  ) {
    this.maxSlots = Math.max(1, Math.floor(maxPipes / 2));
  }

  /**
   * For flows that paid for their own two pipes in the descriptor budget (mmproxy's engine takes 6
   * descriptors per connection at accept): no slot limit, so no direction ever waits; at most
   * `pooled` empty pipes kept (the budget holds those too).
   */
  static perFlow<W>(libc: PipeLibc, pipeBytes: number, pooled: number): PipePool<W> {
    return new PipePool<W>(libc, pipeBytes, Infinity, pooled);
  }

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

  /** Flows holding pipes. */
  get slotsInUse(): number {
    return this.slotsHeld;
  }

  /** Every slot is taken (or directions already wait for one): a flow holding no pipe waits. */
  get spent(): boolean {
    return this.slotsHeld >= this.maxSlots || this.line.size > 0;
  }

  /**
   * A pipe into `into`, from the pool or new; false (errno set) when none can be made. `other`: the
   * flow's other direction; when it holds a pipe this one is within the flow's slot, else it takes
   * a slot (check `spent` first).
   */
  take(into: PipeEnds, other: PipeEnds): boolean {
    if (!this.takePipe(into)) return false;
    if (other.r < 0) this.slotsHeld++;
    return true;
  }

  private takePipe(into: PipeEnds): boolean {
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
    if (this.line.has(into)) return;
    this.line.set(into, waiter);
    this.waits++;
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
   * Give `from`'s pipe back (`other`: the flow's other direction). The flow's last pipe frees its
   * slot: to the first direction in line when one waits, with this pipe (a new one when this one
   * still holds bytes). Otherwise kept when `empty` and there is room, else closed. No-op without one.
   */
  release(from: PipeEnds, empty: boolean, other: PipeEnds): void {
    if (from.r < 0) return;
    const first = other.r < 0 ? this.firstInLine() : undefined;
    if (other.r < 0 && !first) this.slotsHeld--;
    if (first && empty) {
      // Straight to the waiter: still held, never pooled in between.
      const [into, waiter] = first;
      into.r = from.r;
      into.w = from.w;
      this.handed(into, waiter);
    } else {
      this.held--;
      const room = this.maxPipes - this.held - this.idle.length;
      if (empty && room > 0 && this.idle.length < this.maxIdle && !this.draining) {
        this.idle.push({ r: from.r, w: from.w });
      } else {
        this.libc.close(from.r);
        this.libc.close(from.w);
      }
      // Bytes were left in it (the flow is being reset): the waiter gets a new pipe with the slot;
      // if none can be made now the slot is free and the waiter keeps its place for the next one.
      if (first) {
        if (this.takePipe(first[0])) this.handed(first[0], first[1]);
        else this.slotsHeld--;
      }
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

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
export type PipeLibc = Pick<Libc, 'pipe2' | 'fcntl' | 'close' | 'errno'>;

/** Read and write ends; -1 when none is held. */
export interface PipeEnds {
  r: number;
  w: number;
  /** What the pipe holds at most (its F_SETPIPE_SZ size) while one is held. */
  size?: number;
}

/** Empty pipes kept at most. */
export const PIPE_POOL = 1024;

/**
 * The size a bulk direction's pipe grows to: the kernel's default fs/pipe-max-size, the most an
 * unprivileged process may ask for. A direction whose pipe is full at the end of its pump (the
 * sink is slower than the source: a bulk transfer) gets this size, so each splice moves up to 4
 * times as much: one TCP stream's proxy CPU per GB fell from about 0.40 to 0.34 s in the bench.
 */
export const BULK_PIPE_BYTES = 1024 * 1024;

/**
 * Grown pipes at most, held and pooled: 32 MiB of pipe capacity, half of an unprivileged user's
 * fs/pipe-user-pages-soft (16,384 pages), past which the kernel refuses sizes.
 */
export const GROWN_PIPES_MAX = 32;

/** A pipe's size when F_SETPIPE_SZ is refused: the kernel's default (16 pages). */
const DEFAULT_PIPE_BYTES = 65536;

/** The line an engine thread logs on the first pipe size the kernel refused (`errno`: its name). */
export function resizeRefusedMessage(who: string, errno: string, bytes: number, counter: string): string {
  return (
    `${who}: the kernel refused to size a pipe to ${bytes} bytes (F_SETPIPE_SZ: ${errno}): the user's pipes are past ` +
    `fs/pipe-user-pages-soft and the process lacks CAP_SYS_RESOURCE, so pipes keep the kernel's size and bulk transfers ` +
    `cost more CPU; give the service CAP_SYS_RESOURCE or raise fs/pipe-user-pages-soft (counted in ${counter}; logged once per engine thread)`
  );
}

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
  /** Pipes grown past pipeBytes (held and pooled). */
  private grownCount = 0;
  /** Write ends of pipes the kernel refused to grow: not asked again. */
  private readonly ungrowable = new Set<number>();
  /**
   * Sizes the kernel refused (F_SETPIPE_SZ of a new pipe, or grow): an unprivileged process past
   * fs/pipe-user-pages-soft gets EPERM (it lacks CAP_SYS_RESOURCE). Such pipes keep their size.
   */
  resizesRefused = 0;
  /** Called on the first refusal only (the engine logs it once per thread): its errno and the size asked. */
  onResizeRefused: ((errno: number, bytes: number) => void) | undefined;

  constructor(
    private readonly libc: PipeLibc,
    /** F_SETPIPE_SZ of every new pipe. */
    private readonly pipeBytes: number,
    /** Pipes held plus pooled never exceed this: the pipe budget (capacity.ts sharedPipes), half as many slots. */
    private readonly maxPipes: number,
    /** Empty pipes kept at most. */
    private readonly maxIdle = PIPE_POOL,
    /** The size a full pipe grows to (grow); pipeBytes or less: pipes never grow. */
    private readonly bulkBytes = BULK_PIPE_BYTES,
    private readonly maxGrown = GROWN_PIPES_MAX,
  ) {
    this.maxSlots = Math.max(1, Math.floor(maxPipes / 2));
  }

  get inUse(): number {
    return this.held;
  }

  /** Pipes grown to bulkBytes, held and pooled. */
  get grown(): number {
    return this.grownCount;
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
      into.size = pooled.size ?? this.pipeBytes;
    } else {
      if (this.libc.pipe2(this.fds, C.O_NONBLOCK | C.O_CLOEXEC) !== 0) return false;
      into.r = this.fds.readInt32LE(0);
      into.w = this.fds.readInt32LE(4);
      // The size the kernel gave (it rounds up to a power of two pages); refused (an unprivileged
      // user past fs/pipe-user-pages-soft), the pipe keeps the default.
      const size = this.libc.fcntl(into.w, C.F_SETPIPE_SZ, this.pipeBytes);
      if (size < 0) this.refused(this.pipeBytes);
      into.size = size > 0 ? size : DEFAULT_PIPE_BYTES;
    }
    this.held++;
    return true;
  }

  /**
   * Grow the full pipe `of` holds to bulkBytes (a bulk direction: see BULK_PIPE_BYTES), at most
   * maxGrown pipes at once. False when it stays as it is: already grown, the cap reached, or the
   * kernel refused (that pipe is not asked again).
   */
  grow(of: PipeEnds): boolean {
    if (of.r < 0 || (of.size ?? this.pipeBytes) >= this.bulkBytes || this.grownCount >= this.maxGrown || this.ungrowable.has(of.w)) return false;
    const size = this.libc.fcntl(of.w, C.F_SETPIPE_SZ, this.bulkBytes);
    if (size <= (of.size ?? this.pipeBytes)) {
      if (size < 0) this.refused(this.bulkBytes);
      this.ungrowable.add(of.w);
      return false;
    }
    of.size = size;
    this.grownCount++;
    return true;
  }

  private refused(bytes: number): void {
    if (this.resizesRefused++ === 0) this.onResizeRefused?.(this.libc.errno(), bytes);
  }

  /** Close a pipe the pool no longer keeps. */
  private closePipe(p: PipeEnds): void {
    if ((p.size ?? this.pipeBytes) > this.pipeBytes) this.grownCount--;
    this.ungrowable.delete(p.w);
    this.libc.close(p.r);
    this.libc.close(p.w);
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
      into.size = from.size ?? this.pipeBytes;
      this.handed(into, waiter);
    } else {
      this.held--;
      const room = this.maxPipes - this.held - this.idle.length;
      if (empty && room > 0 && this.idle.length < this.maxIdle && !this.draining) {
        this.idle.push({ r: from.r, w: from.w, size: from.size ?? this.pipeBytes });
      } else {
        this.closePipe(from);
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
    from.size = 0;
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
    for (const p of this.idle.splice(0)) this.closePipe(p);
  }
}

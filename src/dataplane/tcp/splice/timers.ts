/**
 * The TCP engines' clock and timers (splice and uring), run once per loop turn from one clock
 * reading (no timer objects): connect and sniff deadlines (kept in accept order, so the due ones
 * are a prefix), the idle timeout, the retry of accepting after running out of descriptors, and
 * the counters report.
 */
import * as C from '../../../core/net/constants.js';

/**
 * The engines' clock (ms): time since the engine started, plus an hour, so that the timers' "last
 * run at 0" is long past at the start, as with Date.now(). Its values are small integers (Smis), which V8
 * keeps in a flow's own fields; Date.now()'s, and any arithmetic on them, are each a 16-byte heap
 * number (three per flow: started, connectDeadline, lastActive). `| 0` makes the Smi; from 2^31 ms
 * (24 days) on the values stay correct, boxed again.
 */
export function engineClock(start = Date.now()): () => number {
  return () => {
    const t = Date.now() - start + 3_600_000;
    return t < 2 ** 31 ? t | 0 : t;
  };
}

/** The due entries of `ordered` (deadlines ascending): stops at the first that is not due. */
export function duePrefix<T>(ordered: Iterable<T>, now: number, deadlineOf: (item: T) => number): T[] {
  const due: T[] = [];
  for (const item of ordered) {
    if (now < deadlineOf(item)) break;
    due.push(item);
  }
  return due;
}

/**
 * The wait of one engine turn: `waitMs` while anything is timed (flows, connects, sniffs, an
 * accept retry, a stop) or the owner has not got the counters as they are now; otherwise
 * IDLE_WAIT_MAX_MS (an event or the owner's wake-up ends it sooner), so an idle engine thread
 * sleeps but for once a second.
 */
export function turnWait(waitMs: number, engine: { readonly timed: boolean; readonly countersReported: boolean }): number {
  return engine.timed || !engine.countersReported ? waitMs : Math.max(waitMs, C.IDLE_WAIT_MAX_MS);
}

/**
 * Whether the owner already has an engine's counters as they are now (turnWait's
 * `countersReported`). Kept only for counters posted while nothing was timed: with no flow,
 * connect, retry or stop, nothing changes them but an event, which ends the wait anyway.
 */
export class ReportedCounters {
  private last: string | undefined;

  posted(counters: unknown, timed: boolean): void {
    this.last = timed ? undefined : JSON.stringify(counters);
  }

  /** The end of a loop turn: when `due`, a snapshot of the counters goes to the owner (`post`) and is remembered. */
  postWhenDue<T>(due: boolean, snapshot: () => T, post: (counters: T) => void, timed: boolean): void {
    if (!due) return;
    const counters = snapshot();
    post(counters);
    this.posted(counters, timed);
  }

  /** `counters`: a snapshot now (small while nothing is timed). */
  current(counters: unknown): boolean {
    return this.last !== undefined && this.last === JSON.stringify(counters);
  }
}

/** The idle pass runs as often as the timeout's resolution needs: 1/10 of it, within bounds. */
export function idleScanInterval(idleTimeoutMs: number): number {
  return Math.min(C.IDLE_SCAN_MAX_MS, Math.max(C.IDLE_SCAN_MIN_MS, idleTimeoutMs / 10));
}

export class EngineTimers {
  private lastScan = 0;
  private lastIdleScan = 0;
  private lastCounters = 0;

  constructor(
    private readonly idleTimeoutMs: number,
    private readonly countersIntervalMs: number,
  ) {}

  /** Connect deadlines and accept retries: every TIMER_SCAN_MS. */
  scanDue(now: number): boolean {
    if (now - this.lastScan < C.TIMER_SCAN_MS) return false;
    this.lastScan = now;
    return true;
  }

  /** A full pass over the flows for the idle timeout (never when it is 0). */
  idleDue(now: number): boolean {
    if (this.idleTimeoutMs <= 0 || now - this.lastIdleScan < idleScanInterval(this.idleTimeoutMs)) return false;
    this.lastIdleScan = now;
    return true;
  }

  countersDue(now: number): boolean {
    if (now - this.lastCounters < this.countersIntervalMs) return false;
    this.lastCounters = now;
    return true;
  }
}

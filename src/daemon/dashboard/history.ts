/**
 * Throughput and new flows per second over the last minutes: one sample a second in a ring buffer
 * of fixed size, computed from running totals (bytes relayed, flows opened) read once a second.
 * Pure: the caller passes the totals and the time.
 */

export interface HistorySample {
  /** End of the second the sample covers (ms since the epoch). */
  readonly t: number;
  readonly bytesFromClientPerSecond: number;
  readonly bytesFromServerPerSecond: number;
  readonly newFlowsPerSecond: number;
}

export interface Totals {
  readonly bytesFromClient: number;
  readonly bytesFromServer: number;
  readonly flowsOpened: number;
}

export class History {
  private readonly ring: (HistorySample | undefined)[];
  private next = 0;
  private last: { readonly at: number; readonly totals: Totals } | undefined;

  constructor(readonly capacity: number) {
    this.ring = new Array<HistorySample | undefined>(capacity).fill(undefined);
  }

  /**
   * Totals now: the rates since the previous call, as a sample (none on the first call). A total
   * that went down (a listener stopped, its counts gone) counts as no traffic, never negative.
   */
  record(at: number, totals: Totals): HistorySample | undefined {
    const previous = this.last;
    this.last = { at, totals };
    if (!previous || at <= previous.at) return undefined;
    const seconds = (at - previous.at) / 1000;
    const rate = (now: number, before: number): number => Math.max(0, Math.round((now - before) / seconds));
    const sample: HistorySample = {
      t: at,
      bytesFromClientPerSecond: rate(totals.bytesFromClient, previous.totals.bytesFromClient),
      bytesFromServerPerSecond: rate(totals.bytesFromServer, previous.totals.bytesFromServer),
      newFlowsPerSecond: rate(totals.flowsOpened, previous.totals.flowsOpened),
    };
    this.ring[this.next] = sample;
    this.next = (this.next + 1) % this.capacity;
    return sample;
  }

  /** The samples kept, oldest first. */
  samples(): HistorySample[] {
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)].filter((s): s is HistorySample => s !== undefined);
  }
}

/**
 * How often something that died may be started again: at most `maxPerMinute` restarts within any
 * minute (a crash loop helps nobody), with a backoff that doubles with the restarts of that minute.
 * Shared by the TCP worker pool and the UDP relay loop. Pure: the clock is passed in.
 */
export class RestartWindow {
  private times: number[] = [];

  constructor(
    private readonly maxPerMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether one more restart is allowed now; counted when it is. */
  allow(): boolean {
    const now = this.now();
    this.times = this.times.filter((t) => now - t < 60_000);
    if (this.times.length >= this.maxPerMinute) return false;
    this.times.push(now);
    return true;
  }

  /** The wait before the restart just allowed: 100 ms, doubling per restart of this minute, at most 5 s. */
  backoffMs(): number {
    return Math.min(5000, 100 * 2 ** Math.min(6, Math.max(0, this.times.length - 1)));
  }
}

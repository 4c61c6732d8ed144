/**
 * One read shared by every caller: while a read is in flight, callers wait for that one; its result
 * serves callers for `maxAgeMs` after it finished. A failed read is not kept: the next caller
 * starts another.
 *
 * The dashboard's explain reads the kernel's state through it (nft, ip and ss, as child processes),
 * so pages, or a client looping on /api/explain, start at most one read per `maxAgeMs` however
 * fast they ask.
 */
export class SharedRead<T> {
  private inFlight: Promise<T> | undefined;
  private last: { readonly value: T; readonly at: number } | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    if (this.last !== undefined && this.now() - this.last.at < this.maxAgeMs) return Promise.resolve(this.last.value);
    if (this.inFlight !== undefined) return this.inFlight;
    const reading = this.read().then(
      (value) => {
        this.last = { value, at: this.now() };
        this.inFlight = undefined;
        return value;
      },
      (error: unknown) => {
        this.inFlight = undefined;
        throw error;
      },
    );
    this.inFlight = reading;
    return reading;
  }
}

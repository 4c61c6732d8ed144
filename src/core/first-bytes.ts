/**
 * The "first bytes" of a connection, before it relays: a protocol's own opening (a PROXY header, a
 * TLS ClientHello, a Host line) read off the front, bounded in size, and decided on. Pure: the
 * engine receives; this holds what came and asks the decoder after each receive, which answers
 *
 * - `more`: a valid prefix, wait for the next bytes (none claimed yet);
 * - `done`: decided; the first `take` bytes were the decoder's own (a PROXY header), everything
 *   after them belongs to the relay and must be sent on first, never lost (a sniffer takes 0);
 * - `fail`: refused, with a stable reason for the counters and the log.
 *
 * When the stream ends (its FIN) or the engine's deadline passes before a decision, the decoder
 * says whether that refuses the connection (a PROXY header cut short) or decides without it (a
 * sniffer: no name, every byte held goes on to the relay).
 *
 * Where those bytes after `take` are, for the engine to send them from: in the last chunk received
 * (an offset into it: nothing copied, the common case of a header and the client's first bytes in
 * one segment), or in the held copy when they began in an earlier chunk.
 */

export type FirstBytesAnswer<T> =
  | { readonly kind: 'more' }
  | { readonly kind: 'done'; readonly value: T; readonly take: number }
  | { readonly kind: 'fail'; readonly reason: string };

export interface FirstBytesDecoder<T> {
  /** The most bytes ever held: a decoder still asking for more at this size ends as `too-long`. */
  readonly maxBytes: number;
  decode(held: Uint8Array): FirstBytesAnswer<T>;
  /**
   * No decision came: the stream ended (`eof`: its FIN, or an error), the deadline passed, or
   * maxBytes came without one (`too-long`), with `held` bytes received. `fail` refuses; `done` decides with `value`, every held byte going on.
   */
  ended(held: number, cause: FirstBytesEnd): { readonly kind: 'fail'; readonly reason: string } | { readonly kind: 'done'; readonly value: T };
}

export type FirstBytesEnd = 'eof' | 'deadline' | 'too-long';

/** Where the bytes after `take` are once decided: from `offset` of the last chunk, or a held copy. */
export type FirstBytesRest = { readonly in: 'chunk'; readonly offset: number } | { readonly in: 'held'; readonly bytes: Buffer };

export type FirstBytesStep<T> =
  | { readonly kind: 'more' }
  | { readonly kind: 'done'; readonly value: T; readonly rest: FirstBytesRest }
  | { readonly kind: 'fail'; readonly reason: string };

/** Nothing held (shared: a Buffer of no bytes cannot be written to; one per connection cost an allocation each). */
const NOTHING = Buffer.alloc(0);

export class FirstBytes<T> {
  private held: Buffer = NOTHING;

  constructor(private readonly decoder: FirstBytesDecoder<T>) {}

  /** Bytes received so far (held, undecided). */
  get length(): number {
    return this.held.length;
  }

  /**
   * The next chunk received (the caller may reuse its memory after this returns: what is still
   * needed is copied, except on `done` with the rest in the chunk).
   */
  offer(chunk: Uint8Array): FirstBytesStep<T> {
    const before = this.held.length;
    const bytes = before === 0 ? chunk : Buffer.concat([this.held, chunk]);
    const answer = this.decoder.decode(bytes);
    if (answer.kind === 'fail') return answer;
    if (answer.kind === 'more') {
      this.held = before === 0 ? Buffer.from(chunk) : (bytes as Buffer);
      return bytes.length >= this.decoder.maxBytes ? this.ended('too-long') : answer;
    }
    if (answer.take < 0 || answer.take > bytes.length) throw new RangeError(`first bytes: the decoder took ${answer.take} of ${bytes.length} bytes`);
    const rest: FirstBytesRest = answer.take >= before ? { in: 'chunk', offset: answer.take - before } : { in: 'held', bytes: Buffer.from(bytes.subarray(answer.take)) };
    this.held = NOTHING;
    return { kind: 'done', value: answer.value, rest };
  }

  /** No decision came (see FirstBytesDecoder.ended): refused, or decided with every held byte to go on. */
  ended(cause: FirstBytesEnd): Exclude<FirstBytesStep<T>, { kind: 'more' }> {
    const answer = this.decoder.ended(this.held.length, cause);
    if (answer.kind === 'fail') return answer;
    const bytes = this.held;
    this.held = NOTHING;
    return { kind: 'done', value: answer.value, rest: { in: 'held', bytes } };
  }
}

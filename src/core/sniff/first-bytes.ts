/**
 * Sniffing (TLS SNI, HTTP Host) as a first-bytes decoder (core/first-bytes.ts), for engines that
 * receive the client's bytes before the route is decided (the uring engine) where the splice engine
 * peeks. It never refuses and takes nothing: every byte goes on to the upstream the name chose.
 * The outcome is what the splice engine counts in `sniffs`: the protocol that named the flow,
 * `none`, `closed` (its FIN or an error came first) or `timeout` (the sniff timeout passed).
 */
import type { FirstBytesDecoder } from '../first-bytes.js';
import { MAX_STREAM_SNIFF_BYTES, sniffStream } from './stream.js';

export interface SniffOutcome {
  readonly outcome: string;
  readonly name: string | undefined;
}

export const SNIFF_DECODER: FirstBytesDecoder<SniffOutcome> = {
  // sniffStream answers by MAX_STREAM_SNIFF_BYTES: too-long is a backstop, decided as 'none'.
  maxBytes: MAX_STREAM_SNIFF_BYTES,
  decode(held) {
    const result = sniffStream(held);
    if (result.kind === 'name') return { kind: 'done', value: { outcome: result.protocol, name: result.name }, take: 0 };
    if (result.kind === 'none') return { kind: 'done', value: { outcome: 'none', name: undefined }, take: 0 };
    return { kind: 'more' };
  },
  ended: (_held, cause) => ({ kind: 'done', value: { outcome: cause === 'deadline' ? 'timeout' : cause === 'too-long' ? 'none' : 'closed', name: undefined } }),
};

/**
 * The PROXY header as a first-bytes decoder (core/first-bytes.ts): what an mmproxy entry reads off
 * each connection before it relays, with the reasons of the other engines (header-reader.ts,
 * mmproxy's splice engine) for the counters and the log.
 */
import type { FirstBytesDecoder } from '../first-bytes.js';
import { decodeProxyHeader, maxProxyHeaderBytes, type ProxyDecodeLimits } from './decode.js';
import type { ProxyHeader } from './header.js';

export function proxyHeaderDecoder(limits: ProxyDecodeLimits): FirstBytesDecoder<ProxyHeader> {
  return {
    // The decoder refuses any header longer than this itself (v1-no-crlf, v2-too-long): too-long is a backstop.
    maxBytes: maxProxyHeaderBytes(limits),
    decode(held) {
      const result = decodeProxyHeader(held, limits);
      if (result.kind === 'more') return result;
      if (result.kind === 'invalid') return { kind: 'fail', reason: result.reason };
      return { kind: 'done', value: result.header, take: result.take };
    },
    // A stream that ends inside the header is a truncated one; before any byte, a plain early close.
    ended: (held, cause) => ({ kind: 'fail', reason: cause === 'deadline' ? 'header-timeout' : cause === 'too-long' ? 'v2-too-long' : held > 0 ? 'truncated' : 'closed-before-header' }),
  };
}

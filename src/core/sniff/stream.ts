/**
 * The name a TCP client asked for, from the first bytes of its stream: TLS SNI, else HTTP/1 Host.
 * The two cannot both match (a TLS stream starts with byte 22, an HTTP request with an upper-case
 * letter), so the order only saves work. 'more' only while one of them still says 'more'; a caller
 * that has peeked MAX_STREAM_SNIFF_BYTES always has a final answer.
 */
import { MAX_HTTP_SNIFF_BYTES, sniffHttpHost } from './http-host.js';
import { SNIFF_MORE, SNIFF_NONE, type SniffResult } from './result.js';
import { MAX_TLS_SNIFF_BYTES, sniffTlsServerName } from './tls-client-hello.js';

/** Peeking this many bytes is always enough for a final answer from sniffStream. */
export const MAX_STREAM_SNIFF_BYTES = Math.max(MAX_TLS_SNIFF_BYTES, MAX_HTTP_SNIFF_BYTES);

export function sniffStream(bytes: Uint8Array): SniffResult {
  const tls = sniffTlsServerName(bytes);
  if (tls.kind === 'name') return tls;
  const http = sniffHttpHost(bytes);
  if (http.kind === 'name') return http;
  return tls.kind === 'more' || http.kind === 'more' ? SNIFF_MORE : SNIFF_NONE;
}

/**
 * The name in an HTTP/1.x request's Host header, read from the first bytes of a TCP stream without
 * consuming them (RFC 9112 sections 3 and 5, RFC 9110 section 7.2).
 *
 *   request-line = method SP request-target SP HTTP-version CRLF
 *   field-line   = field-name ":" OWS field-value OWS CRLF     ... then an empty line
 *   Host         = uri-host [ ":" port ]   where uri-host may be an IP literal in brackets
 *
 * The answer waits for the whole header block (clients send it in one write): a request with two
 * Host fields is answered 'none', since a server may use the other one (RFC 9112 section 3.2 makes
 * it a 400). The header block is bounded by MAX_HTTP_SNIFF_BYTES; longer ones are 'none'. Any
 * control character in it, a method that is not an upper-case token, a line fold, or a field line
 * without a colon is 'none' as soon as it is seen, so other protocols are told early. Line ends
 * may be CRLF or a bare LF (RFC 9112 section 2.2 lets recipients accept both).
 *
 * An IP literal in Host (`[2001:db8::1]:8080`, `203.0.113.20`) is not a name: 'none', and address
 * routes decide (the literal is normally the flow's own destination anyway).
 */
import { dnsNameFromBytes } from './dns-name.js';
import { SNIFF_MORE, SNIFF_NONE, sniffedName, type SniffResult } from './result.js';

/** The largest request head (request line and header fields) the sniffer waits for. */
export const MAX_HTTP_SNIFF_BYTES = 16 * 1024;
const MAX_METHOD = 20;
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const VERSION = Buffer.from('HTTP/1.');

const isUpperToken = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x5f;
/** Bytes refused anywhere in a request head: controls other than HT (CR and LF are handled apart). */
const isControl = (c: number): boolean => (c < 0x20 && c !== HT) || c === 0x7f;
const isOws = (c: number | undefined): boolean => c === SP || c === HT;

export function sniffHttpHost(bytes: Uint8Array): SniffResult {
  const bounded = bytes.length >= MAX_HTTP_SNIFF_BYTES;
  const received = Math.min(bytes.length, MAX_HTTP_SNIFF_BYTES);
  const more = bounded ? SNIFF_NONE : SNIFF_MORE;

  // The method: an upper-case token and one space, told from the first byte on.
  let pos = 0;
  while (pos < received && isUpperToken(bytes[pos]!)) pos++;
  if (pos > MAX_METHOD) return SNIFF_NONE;
  if (pos === received) return more;
  if (pos === 0 || bytes[pos] !== SP) return SNIFF_NONE;

  let host: { start: number; end: number } | undefined;
  let duplicate = false;
  for (let lineStart = 0, first = true; ; first = false) {
    const lineEnd = endOfLine(bytes, lineStart, received);
    if (lineEnd === 'bad') return SNIFF_NONE;
    if (lineEnd === 'more') return first ? requestLinePrefix(bytes, pos + 1, received, more) : more;
    const next = lineEnd + (bytes[lineEnd] === CR ? 2 : 1);
    if (first) {
      if (!requestLine(bytes, pos + 1, lineEnd)) return SNIFF_NONE;
    } else if (lineEnd === lineStart) {
      break; // the empty line: the header block is complete
    } else {
      const field = fieldLine(bytes, lineStart, lineEnd);
      if (field === undefined) return SNIFF_NONE;
      if (field.isHost) {
        duplicate ||= host !== undefined;
        host = field.value;
      }
    }
    lineStart = next;
  }
  if (host === undefined || duplicate) return SNIFF_NONE;
  return sniffedName(hostName(bytes, host.start, host.end), 'http');
}

/**
 * The offset of the CR of a CRLF (or of a bare LF) ending the line at `start`; 'more' when no line
 * end was received yet; 'bad' on a control character or a CR not followed by LF.
 */
function endOfLine(bytes: Uint8Array, start: number, received: number): number | 'more' | 'bad' {
  for (let i = start; i < received; i++) {
    const c = bytes[i]!;
    if (c === LF) return i;
    if (c === CR) {
      if (i + 1 === received) return 'more';
      return bytes[i + 1] === LF ? i : 'bad';
    }
    if (isControl(c)) return 'bad';
  }
  return 'more';
}

/** request-target SP HTTP-version in bytes[start, end): a target without spaces, then HTTP/1.x. */
function requestLine(bytes: Uint8Array, start: number, end: number): boolean {
  const space = bytes.indexOf(SP, start);
  if (space <= start || space >= end || end - space - 1 !== VERSION.length + 1) return false;
  for (let i = 0; i < VERSION.length; i++) if (bytes[space + 1 + i] !== VERSION[i]) return false;
  const minor = bytes[end - 1]!;
  return minor === 0x30 || minor === 0x31;
}

/** A request line still arriving: 'none' as soon as what follows the target cannot be HTTP/1.x. */
function requestLinePrefix(bytes: Uint8Array, start: number, received: number, more: SniffResult): SniffResult {
  const space = bytes.indexOf(SP, start);
  if (space < 0 || space >= received) return more;
  if (space === start) return SNIFF_NONE;
  for (let i = space + 1; i < received && i - space - 1 < VERSION.length; i++) if (bytes[i] !== VERSION[i - space - 1]) return SNIFF_NONE;
  return more;
}

const HOST = Buffer.from('host');

/** A field line in bytes[start, end): whether it is Host, and its value without OWS. */
function fieldLine(bytes: Uint8Array, start: number, end: number): { isHost: boolean; value: { start: number; end: number } } | undefined {
  if (isOws(bytes[start])) return undefined; // obsolete line folding
  const colon = bytes.indexOf(COLON, start);
  if (colon <= start || colon >= end) return undefined;
  let isHost = colon - start === HOST.length;
  for (let i = start; i < colon; i++) {
    const c = bytes[i]!;
    if (c <= SP || c >= 0x7f) return undefined; // no whitespace between name and colon (RFC 9112 section 5.1)
    if (isHost && (c | 0x20) !== HOST[i - start]) isHost = false;
  }
  let valueStart = colon + 1;
  let valueEnd = end;
  while (valueStart < valueEnd && isOws(bytes[valueStart])) valueStart++;
  while (valueEnd > valueStart && isOws(bytes[valueEnd - 1])) valueEnd--;
  return { isHost, value: { start: valueStart, end: valueEnd } };
}

/** The DNS name in a Host value `name[:port]`; undefined for an IP literal, a bad port or a bad name. */
function hostName(bytes: Uint8Array, start: number, end: number): string | undefined {
  if (bytes[start] === 0x5b) return undefined; // `[` IPv6 (or IPvFuture) literal: an address, not a name
  const colon = bytes.indexOf(COLON, start);
  if (colon >= 0 && colon < end) {
    const digits = end - colon - 1;
    if (digits < 1 || digits > 5) return undefined;
    let port = 0;
    for (let i = colon + 1; i < end; i++) {
      const c = bytes[i]!;
      if (c < 0x30 || c > 0x39) return undefined;
      port = port * 10 + (c - 0x30);
    }
    if (port > 65535) return undefined;
    end = colon;
  }
  return dnsNameFromBytes(bytes, start, end);
}

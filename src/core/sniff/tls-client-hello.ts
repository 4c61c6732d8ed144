/**
 * The server name (SNI, RFC 6066 section 3) in a TLS ClientHello, read from the first bytes of a
 * TCP stream without consuming them.
 *
 *   record:      type(1)=22 handshake | version(2)=3.x | length(2) <= 2^14 | fragment
 *   handshake:   type(1)=1 ClientHello | length(3) | body          (may span several records)
 *   ClientHello: legacy_version(2) random(32) session_id<0..32> cipher_suites<2..2^16-2>
 *                compression_methods<1..2^8-1> extensions<0..2^16-1>
 *   extension:   type(2) | length(2) | data;   server_name (type 0):
 *                server_name_list<1..2^16-1> of name_type(1)=0 host_name | host_name<1..2^16-1>
 *
 * Parsing walks the bytes received so far and stops at the SNI: bytes of the ClientHello after it
 * are not waited for. Every length is checked against two ends: the end its enclosing structure
 * declared (beyond it: malformed, 'none') and the end of the bytes received (beyond it: 'more').
 * At most MAX_TLS_SNIFF_BYTES of the stream are ever looked at; a ClientHello whose name lies
 * further (or a stream of tiny records that would make it so) is 'none', so a caller that peeks
 * that many bytes always gets a final answer.
 */
import { dnsNameFromBytes } from './dns-name.js';
import { SNIFF_MORE, SNIFF_NONE, sniffedName, type SniffProtocol, type SniffResult } from './result.js';

const RECORD_HEADER = 5;
const MAX_RECORD = 1 << 14;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const HANDSHAKE_HEADER = 4;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST_NAME = 0;

/** How much of a stream the TLS sniffer reads at most: one full-size record. */
export const MAX_TLS_SNIFF_BYTES = MAX_RECORD + RECORD_HEADER;
/** The largest ClientHello message accepted (one full record's worth; real ones are under 2 KiB). */
export const MAX_CLIENT_HELLO = MAX_RECORD - HANDSHAKE_HEADER;

export function sniffTlsServerName(bytes: Uint8Array): SniffResult {
  const bounded = bytes.length >= MAX_TLS_SNIFF_BYTES;
  const stream = bounded ? bytes.subarray(0, MAX_TLS_SNIFF_BYTES) : bytes;
  const handshake = handshakeBytes(stream);
  if (handshake === undefined) return SNIFF_NONE;
  const result = sniffClientHelloMessage(handshake.bytes, 'tls');
  if (result.kind !== 'more') return result;
  // The ClientHello goes on, but no more records will arrive within the bound (or a record
  // boundary was malformed after the bytes the handshake layer has seen).
  return bounded || handshake.complete ? SNIFF_NONE : SNIFF_MORE;
}

/**
 * The handshake-layer bytes carried by the leading handshake records, or undefined if the stream
 * does not start like TLS. `complete`: no further record can add to them (a malformed header
 * follows, or a record that is not a handshake).
 */
function handshakeBytes(stream: Uint8Array): { readonly bytes: Uint8Array; readonly complete: boolean } | undefined {
  const fragments: Uint8Array[] = [];
  let pos = 0;
  let complete = false;
  while (pos < stream.length) {
    // Check each header byte as soon as it arrives, so that non-TLS streams are told at once.
    if (stream[pos] !== CONTENT_HANDSHAKE || (pos + 1 < stream.length && stream[pos + 1] !== 3) || (pos + 2 < stream.length && stream[pos + 2]! > 4)) {
      if (pos === 0) return undefined;
      complete = true;
      break;
    }
    if (pos + RECORD_HEADER > stream.length) break;
    const length = (stream[pos + 3]! << 8) | stream[pos + 4]!;
    if (length === 0 || length > MAX_RECORD) {
      if (pos === 0) return undefined;
      complete = true;
      break;
    }
    const start = pos + RECORD_HEADER;
    const end = Math.min(start + length, stream.length);
    fragments.push(stream.subarray(start, end));
    pos = start + length;
  }
  if (fragments.length === 1) return { bytes: fragments[0]!, complete };
  return { bytes: Buffer.concat(fragments), complete };
}

/** A length check: past the declared end is malformed, past the bytes received is 'more'. */
function beyond(end: number, declaredEnd: number, received: number): SniffResult | undefined {
  if (end > declaredEnd) return SNIFF_NONE;
  if (end > received) return SNIFF_MORE;
  return undefined;
}

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;

/**
 * The SNI in handshake-layer bytes that start with a ClientHello message (TLS records removed, or
 * a QUIC CRYPTO stream). 'more': the message is valid so far but ends before its name.
 */
export function sniffClientHelloMessage(hs: Uint8Array, protocol: SniffProtocol): SniffResult {
  const received = hs.length;
  if (received === 0) return SNIFF_MORE;
  if (hs[0] !== HANDSHAKE_CLIENT_HELLO) return SNIFF_NONE;
  let stop = beyond(HANDSHAKE_HEADER, Infinity, received);
  if (stop) return stop;
  const length = (hs[1]! << 16) | (hs[2]! << 8) | hs[3]!;
  if (length > MAX_CLIENT_HELLO) return SNIFF_NONE;
  const end = HANDSHAKE_HEADER + length;

  // legacy_version (3.x) and random.
  let pos = HANDSHAKE_HEADER;
  if ((stop = beyond(pos + 34, end, received))) return stop;
  if (hs[pos] !== 3) return SNIFF_NONE;
  pos += 34;
  // session_id, cipher_suites, compression_methods: skipped by their lengths.
  if ((stop = beyond(pos + 1, end, received))) return stop;
  const sessionId = hs[pos]!;
  if (sessionId > 32) return SNIFF_NONE;
  pos += 1 + sessionId;
  if ((stop = beyond(pos + 2, end, received))) return stop;
  const suites = u16(hs, pos);
  if (suites < 2 || suites % 2 !== 0) return SNIFF_NONE;
  pos += 2 + suites;
  if ((stop = beyond(pos + 1, end, received))) return stop;
  const compressions = hs[pos]!;
  if (compressions < 1) return SNIFF_NONE;
  pos += 1 + compressions;
  if (pos === end) return SNIFF_NONE; // no extensions at all: no name
  if ((stop = beyond(pos + 2, end, received))) return stop;
  const extensionsEnd = pos + 2 + u16(hs, pos);
  if (extensionsEnd !== end) return SNIFF_NONE;
  pos += 2;

  while (pos < extensionsEnd) {
    if ((stop = beyond(pos + 4, extensionsEnd, received))) return stop;
    const type = u16(hs, pos);
    const dataEnd = pos + 4 + u16(hs, pos + 2);
    if ((stop = beyond(dataEnd, extensionsEnd, received))) return stop;
    if (type === EXTENSION_SERVER_NAME) return serverName(hs, pos + 4, dataEnd, protocol);
    pos = dataEnd;
  }
  return SNIFF_NONE;
}

/** The first host_name of a complete server_name extension's data in `hs[start, end)`. */
function serverName(hs: Uint8Array, start: number, end: number, protocol: SniffProtocol): SniffResult {
  if (start + 2 > end || start + 2 + u16(hs, start) !== end) return SNIFF_NONE;
  for (let pos = start + 2; pos + 3 <= end; ) {
    const nameEnd = pos + 3 + u16(hs, pos + 1);
    if (nameEnd > end) return SNIFF_NONE;
    if (hs[pos] === NAME_TYPE_HOST_NAME) return sniffedName(dnsNameFromBytes(hs, pos + 3, nameEnd), protocol);
    pos = nameEnd;
  }
  return SNIFF_NONE;
}

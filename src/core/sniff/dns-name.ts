/**
 * The one check every name goes through before tproxy routes or logs it: a name read off the wire
 * (TLS SNI, HTTP Host, QUIC SNI) is attacker-controlled, so only what can be a DNS host name passes,
 * and a hostile name (control characters, spaces, quotes, over-long labels) never reaches a log
 * line or a metric label.
 *
 * Accepted: 1 to 253 characters after one trailing dot is removed; labels of 1 to 63 characters
 * from letters, digits, `-` and `_` (underscores occur in real host names, e.g. service records
 * and some CDNs); upper case folded to lower case. Refused besides: a last label of digits only,
 * which is an IPv4 address literal (RFC 6066 forbids literals in SNI; in a Host header the address
 * is already the flow's destination, so address routes decide) - no top-level domain is numeric
 * (RFC 3696 section 2). Internationalised names arrive as A-labels (`xn--...`), which pass as is.
 */

const MAX_NAME = 253;
const MAX_LABEL = 63;
const DOT = 0x2e;

/** 0: refused; 1: letter/digit/hyphen/underscore (upper case letters are folded). */
const ALLOWED = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) ALLOWED[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) ALLOWED[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) ALLOWED[c] = 1;
ALLOWED[0x2d] = 1;
ALLOWED[0x5f] = 1;

/**
 * The normalised name in `bytes[start, end)` (ASCII), or undefined if it is not a valid DNS name.
 * Reads the bytes directly so that no string is built for garbage.
 */
export function dnsNameFromBytes(bytes: Uint8Array, start: number, end: number): string | undefined {
  if (start < 0 || end > bytes.length) return undefined;
  if (end > start && bytes[end - 1] === DOT) end--;
  const length = end - start;
  if (length < 1 || length > MAX_NAME) return undefined;
  let labelStart = start;
  let digitsOnly = true;
  let upper = false;
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    if (c === DOT) {
      if (i === labelStart || i - labelStart > MAX_LABEL) return undefined;
      labelStart = i + 1;
      digitsOnly = true;
      continue;
    }
    if (c >= 0x80 || ALLOWED[c] === 0) return undefined;
    if (c < 0x30 || c > 0x39) digitsOnly = false;
    if (c >= 0x41 && c <= 0x5a) upper = true;
  }
  if (end === labelStart || end - labelStart > MAX_LABEL || digitsOnly) return undefined;
  const name = Buffer.from(bytes.buffer, bytes.byteOffset + start, length).toString('latin1');
  return upper ? name.toLowerCase() : name;
}

/** The normalised form of `text` as a DNS name, or undefined if it is not one. */
export function normalizeDnsName(text: string): string | undefined {
  // Anything beyond Latin-1 is refused anyway: a char code over 0x7f fails the byte check below.
  if (text.length > MAX_NAME + 1) return undefined;
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return undefined;
    bytes[i] = c;
  }
  return dnsNameFromBytes(bytes, 0, bytes.length);
}

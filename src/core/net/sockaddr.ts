/**
 * struct sockaddr_in / sockaddr_in6 encoding and decoding. Pure: Buffers in, Buffers out.
 *
 *   sockaddr_in  (16 bytes): u16 family (host order) | u16 port (network order) | 4 addr | 8 zero
 *   sockaddr_in6 (28 bytes): u16 family | u16 port (network) | u32 flowinfo | 16 addr | u32 scope_id
 */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../errors.js';
import { quoted } from '../quote.js';
import { AF_INET, AF_INET6, type Family } from './constants.js';

export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;
/** Big enough for any sockaddr we use (sizeof(struct sockaddr_storage) is 128). */
export const SOCKADDR_STORAGE_SIZE = 128;

/** An IP endpoint in the notation Node uses (`address` as text, `port` as a number). */
export interface Endpoint {
  readonly family: Family;
  readonly address: string;
  readonly port: number;
  /** IPv6 scope id (interface index) for link-local addresses. */
  readonly scopeId?: number;
}

export function familyOf(address: string): Family {
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) return 4;
  if (ipaddr.IPv6.isValid(address)) return 6;
  throw new TproxyError('ERR_INVALID_ARGUMENT', `${quoted(address)} is not an IPv4 or IPv6 address`, { address: quoted(address) });
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `port ${port} is out of range: use an integer from 0 to 65535`, { port });
  }
}

/**
 * The address of a dotted quad in its canonical form (four decimal parts of at most 255, no leading
 * zeros: what decodeSockaddr and the PROXY decoders print) as a 32-bit number, read by hand: this
 * runs per connection (the mmproxy backend socket's bind and connect), where ipaddr.js's regular
 * expressions and parseInt cost about 1 us a call. -1 for any other text, which the general path
 * then accepts or refuses: this accepts a subset of what it does, with the same bytes.
 */
function parseDottedQuad(text: string): number {
  let address = 0;
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // the end closes the last part as a '.' would
    if (c === 46) {
      if (digits === 0 || part > 3) return -1;
      address = address * 256 + value;
      part++;
      digits = 0;
      value = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && value === 0) return -1; // a leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return -1;
      digits++;
    } else return -1;
  }
  return part === 4 ? address : -1;
}

/** sockaddr_in of the address `parseDottedQuad` read, into `target` at `offset` (16 bytes; byte stores: this runs per connection). */
function writeSockaddrIn(address: number, port: number, target: Buffer, offset: number): void {
  if (offset < 0 || offset + SOCKADDR_IN_SIZE > target.length) throw new RangeError(`sockaddr_in at ${offset} does not fit in ${target.length} bytes`);
  target[offset] = AF_INET & 0xff;
  target[offset + 1] = AF_INET >>> 8;
  target[offset + 2] = port >>> 8;
  target[offset + 3] = port & 0xff;
  target[offset + 4] = address >>> 24;
  target[offset + 5] = (address >>> 16) & 0xff;
  target[offset + 6] = (address >>> 8) & 0xff;
  target[offset + 7] = address & 0xff;
  for (let i = 8; i < SOCKADDR_IN_SIZE; i++) target[offset + i] = 0;
}

/** Dotted quads made so far, by their 32-bit value (a balancer's, and frequent clients'): bounded, cleared when full. */
const dottedQuads = new Map<number, string>();
const DOTTED_QUADS_KEPT = 1024;

/**
 * The dotted quad of four address bytes (canonical: what ipaddr.js prints), from a small cache: the
 * text of an address seen again is not built again (four number conversions and six joins, per
 * accepted connection and per PROXY header address).
 */
export function dottedQuad(a: number, b: number, c: number, d: number): string {
  const key = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
  let text = dottedQuads.get(key);
  if (text === undefined) {
    if (dottedQuads.size >= DOTTED_QUADS_KEPT) dottedQuads.clear();
    text = `${a}.${b}.${c}.${d}`;
    dottedQuads.set(key, text);
  }
  return text;
}

function encodeDottedQuad(text: string, port: number): Buffer | undefined {
  const address = parseDottedQuad(text);
  if (address < 0) return undefined;
  const buf = Buffer.alloc(SOCKADDR_IN_SIZE);
  writeSockaddrIn(address, port, buf, 0);
  return buf;
}

/**
 * encodeSockaddr's bytes written into `target` at `offset` (room for SOCKADDR_IN6_SIZE bytes), for
 * callers that keep sockaddrs in memory of their own (the ring's bind slots): the same checks, no
 * Buffer of its own for a canonical dotted quad. Returns the sockaddr's length.
 */
export function encodeSockaddrInto(endpoint: Endpoint, target: Buffer, offset: number): number {
  if (endpoint.family === 4) {
    checkPort(endpoint.port);
    const address = parseDottedQuad(endpoint.address);
    if (address >= 0) {
      writeSockaddrIn(address, endpoint.port, target, offset);
      return SOCKADDR_IN_SIZE;
    }
  }
  const encoded = encodeSockaddr(endpoint);
  encoded.copy(target, offset);
  return encoded.length;
}

/** Encode an endpoint as sockaddr_in (IPv4) or sockaddr_in6 (IPv6). */
export function encodeSockaddr(endpoint: Endpoint): Buffer {
  checkPort(endpoint.port);
  if (endpoint.family === 4) {
    const fast = encodeDottedQuad(endpoint.address, endpoint.port);
    if (fast) return fast;
    if (!ipaddr.IPv4.isValidFourPartDecimal(endpoint.address)) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `${quoted(endpoint.address)} is not an IPv4 address`, { address: quoted(endpoint.address) });
    }
    const buf = Buffer.alloc(SOCKADDR_IN_SIZE);
    buf.writeUInt16LE(AF_INET, 0);
    buf.writeUInt16BE(endpoint.port, 2);
    Buffer.from(ipaddr.IPv4.parse(endpoint.address).toByteArray()).copy(buf, 4);
    return buf;
  }
  if (!ipaddr.IPv6.isValid(endpoint.address)) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `${quoted(endpoint.address)} is not an IPv6 address`, { address: quoted(endpoint.address) });
  }
  const buf = Buffer.alloc(SOCKADDR_IN6_SIZE);
  buf.writeUInt16LE(AF_INET6, 0);
  buf.writeUInt16BE(endpoint.port, 2);
  Buffer.from(ipaddr.IPv6.parse(endpoint.address).toByteArray()).copy(buf, 8);
  buf.writeUInt32LE(endpoint.scopeId ?? 0, 24);
  return buf;
}

/** Decode a sockaddr_in / sockaddr_in6 of `length` bytes at `offset` of `buf` (its start by default). */
export function decodeSockaddr(buf: Buffer, length: number = buf.length, offset = 0): Endpoint {
  if (length < 2) throw new TproxyError('ERR_INVALID_ARGUMENT', `sockaddr of ${length} bytes is too short`, { length });
  const family = buf.readUInt16LE(offset);
  if (family === AF_INET) {
    if (length < 8) throw new TproxyError('ERR_INVALID_ARGUMENT', `sockaddr_in of ${length} bytes is too short (need 8)`, { length });
    // Dotted decimal is already canonical (what ipaddr.js prints), and this runs per connection.
    const address = dottedQuad(buf[offset + 4] ?? 0, buf[offset + 5] ?? 0, buf[offset + 6] ?? 0, buf[offset + 7] ?? 0);
    return { family: 4, address, port: buf.readUInt16BE(offset + 2) };
  }
  if (family === AF_INET6) {
    if (length < 24) throw new TproxyError('ERR_INVALID_ARGUMENT', `sockaddr_in6 of ${length} bytes is too short (need 24)`, { length });
    const address = ipaddr.fromByteArray([...buf.subarray(offset + 8, offset + 24)]).toString();
    const scopeId = length >= 28 ? buf.readUInt32LE(offset + 24) : 0;
    return scopeId === 0 ? { family: 6, address, port: buf.readUInt16BE(offset + 2) } : { family: 6, address, port: buf.readUInt16BE(offset + 2), scopeId };
  }
  throw new TproxyError('ERR_INVALID_ARGUMENT', `unsupported address family ${family} in sockaddr`, { family });
}

/** `198.51.100.10:80` or `[2001:db8::1]:80`. */
export function formatEndpoint(endpoint: Pick<Endpoint, 'address' | 'port'>): string {
  return endpoint.address.includes(':') ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
}

/** Canonical text of an address (RFC 5952 for IPv6; IPv4-mapped IPv6 unwrapped to IPv4). */
export function normalizeAddress(address: string): string {
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (parsed as ipaddr.IPv6).toIPv4Address().toString();
  }
  return parsed.toString();
}

/**
 * A compact identity of the endpoint in an encoded sockaddr (port and address bytes; IPv6 flowinfo
 * and scope id ignored), for map keys on hot paths where decoding to text would cost too much.
 */
export function sockaddrKey(buf: Buffer): string {
  return buf.readUInt16LE(0) === AF_INET ? buf.toString('latin1', 2, 8) : buf.toString('latin1', 2, 4) + buf.toString('latin1', 8, 24);
}

/** sockaddrKey of an endpoint. */
export function endpointKey(endpoint: Endpoint): string {
  return sockaddrKey(encodeSockaddr(endpoint));
}

export function sameEndpoint(a: Pick<Endpoint, 'address' | 'port'>, b: Pick<Endpoint, 'address' | 'port'>): boolean {
  return a.port === b.port && normalizeAddress(a.address) === normalizeAddress(b.address);
}

/** The wildcard address of a family: `0.0.0.0` or `::`. */
export function anyAddress(family: Family): string {
  return family === 4 ? '0.0.0.0' : '::';
}

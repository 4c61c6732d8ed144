/**
 * PROXY protocol version 2: binary (proxy-protocol.txt section 2.2).
 *
 *   signature(12) | ver_cmd(1): 0x2 << 4 | LOCAL 0 / PROXY 1
 *                 | fam(1): AF_UNSPEC 0 / INET 1 / INET6 2 / UNIX 3 << 4 | UNSPEC 0 / STREAM 1 / DGRAM 2
 *                 | len(2, network order): bytes after these 16
 *   addresses:    INET  src(4) dst(4) sport(2) dport(2)        12 bytes
 *                 INET6 src(16) dst(16) sport(2) dport(2)      36 bytes
 *                 UNIX  src(108) dst(108)                     216 bytes
 *   TLVs:         type(1) | length(2) | value, up to the end of len
 *
 * The declared length is checked against the caller's bound before anything is waited for, so a
 * header cannot make the receiver buffer more than that bound. A LOCAL header's addresses are
 * skipped (the receiver must ignore them); AF_UNIX with PROXY is refused (no IP to connect from).
 * TLVs are returned as bytes (copies: the caller's buffer may be reused), unknown types included;
 * a PP2_TYPE_CRC32C, if present, is checked over the whole header with its value zeroed.
 */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../errors.js';
import { dottedQuad, type Endpoint } from '../net/sockaddr.js';
import { crc32c } from './crc32c.js';
import { PP2_TYPE, PROXY_MORE, V2_FIXED_BYTES, V2_SIGNATURE, proxyInvalid, type ProxyDecodeResult, type ProxyHeader, type ProxyTlv, type ProxyTransport } from './header.js';

const VERSION = 0x20;
const COMMAND_LOCAL = 0x0;
const COMMAND_PROXY = 0x1;
const AF_UNSPEC = 0x0;
const AF_INET = 0x1;
const AF_INET6 = 0x2;
const AF_UNIX = 0x3;
const TRANSPORT_CODES: Readonly<Record<ProxyTransport, number>> = { unspec: 0x0, tcp: 0x1, udp: 0x2 };
const TRANSPORTS: readonly ProxyTransport[] = ['unspec', 'tcp', 'udp'];
const ADDRESS_BYTES: Readonly<Record<number, number>> = { [AF_UNSPEC]: 0, [AF_INET]: 12, [AF_INET6]: 36, [AF_UNIX]: 216 };
const MAX_UNIQUE_ID = 128;

export interface EncodeV2Options {
  /** Append a PP2_TYPE_CRC32C over the whole header. */
  readonly crc32c?: boolean;
}

export function encodeProxyHeaderV2(header: Pick<ProxyHeader, 'command' | 'transport' | 'addresses'> & { readonly tlvs?: readonly ProxyTlv[] }, options: EncodeV2Options = {}): Buffer {
  const { addresses } = header;
  let family = AF_UNSPEC;
  let addressBlock = Buffer.alloc(0);
  if (addresses !== undefined) {
    const { source, destination } = addresses;
    if (source.family !== destination.family) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `a PROXY header needs source and destination of one family (IPv${source.family} and IPv${destination.family} given)`, {
        source: source.address,
        destination: destination.address,
      });
    }
    family = source.family === 4 ? AF_INET : AF_INET6;
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(source.port, 0);
    ports.writeUInt16BE(destination.port, 2);
    addressBlock = Buffer.concat([addressBytes(source), addressBytes(destination), ports]);
  }
  const tlvs = [...(header.tlvs ?? [])];
  if (options.crc32c) tlvs.push({ type: PP2_TYPE.CRC32C, value: new Uint8Array(4) });
  const tlvBlock = Buffer.concat(
    tlvs.map(({ type, value }) => {
      if (!Number.isInteger(type) || type < 0 || type > 0xff || value.length > 0xffff) {
        throw new TproxyError('ERR_INVALID_ARGUMENT', `PROXY v2 TLV of type ${type} and ${value.length} bytes does not fit (type 0-255, at most 65535 bytes)`, { type });
      }
      return Buffer.concat([Buffer.of(type, value.length >> 8, value.length & 0xff), value]);
    }),
  );
  const length = addressBlock.length + tlvBlock.length;
  if (length > 0xffff) throw new TproxyError('ERR_INVALID_ARGUMENT', `PROXY v2 header of ${length} bytes is longer than 65535`, { length });
  const command = header.command === 'local' ? COMMAND_LOCAL : COMMAND_PROXY;
  const fixed = Buffer.concat([V2_SIGNATURE, Buffer.of(VERSION | command, (family << 4) | TRANSPORT_CODES[header.transport], length >> 8, length & 0xff)]);
  const encoded = Buffer.concat([fixed, addressBlock, tlvBlock]);
  if (options.crc32c) encoded.writeUInt32BE(crc32c(encoded), encoded.length - 4);
  return encoded;
}

function addressBytes(endpoint: Endpoint): Buffer {
  return Buffer.from(ipaddr.parse(endpoint.address).toByteArray());
}

/** A v2 header at the start of `bytes` (which start with a prefix of the signature). */
export function decodeProxyHeaderV2(bytes: Uint8Array, maxBytes: number): ProxyDecodeResult {
  for (let i = 0; i < Math.min(bytes.length, V2_SIGNATURE.length); i++) if (bytes[i] !== V2_SIGNATURE[i]) return proxyInvalid('bad-signature');
  if (bytes.length > 12 && (bytes[12]! & 0xf0) !== VERSION) return proxyInvalid('v2-version');
  if (bytes.length < V2_FIXED_BYTES) return PROXY_MORE;
  const command = bytes[12]! & 0x0f;
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY) return proxyInvalid('v2-command');
  const family = bytes[13]! >> 4;
  const transport = TRANSPORTS[bytes[13]! & 0x0f];
  const addressLength = ADDRESS_BYTES[family];
  if (transport === undefined || addressLength === undefined) return proxyInvalid('v2-family');
  if (command === COMMAND_PROXY && family === AF_UNIX) return proxyInvalid('v2-family');
  const length = (bytes[14]! << 8) | bytes[15]!;
  const take = V2_FIXED_BYTES + length;
  if (take > maxBytes) return proxyInvalid('v2-too-long');
  if (length < addressLength) return proxyInvalid('v2-address-truncated');
  if (bytes.length < take) return PROXY_MORE;

  const decoded = decodeTlvs(bytes, V2_FIXED_BYTES + addressLength, take);
  if (decoded === undefined) return proxyInvalid('v2-tlv-malformed');
  const { tlvs, crcAt } = decoded;
  if (crcAt >= 0 && !crcMatches(bytes.subarray(0, take), crcAt)) return proxyInvalid('v2-crc32c-mismatch');

  // Two literals rather than a spread of the optional addresses: this runs per connection.
  const header: ProxyHeader =
    command === COMMAND_PROXY && (family === AF_INET || family === AF_INET6)
      ? { version: 2, command: 'proxy', transport, addresses: decodeAddresses(bytes, family), tlvs }
      : { version: 2, command: command === COMMAND_LOCAL ? 'local' : 'proxy', transport, tlvs };
  return { kind: 'header', header, take };
}

function decodeAddresses(bytes: Uint8Array, family: number): { source: Endpoint; destination: Endpoint } {
  const at = V2_FIXED_BYTES;
  const size = family === AF_INET ? 4 : 16;
  // Dotted decimal is already canonical; IPv6 goes through ipaddr.js for RFC 5952 text.
  const text = (start: number): string =>
    size === 4 ? dottedQuad(bytes[start]!, bytes[start + 1]!, bytes[start + 2]!, bytes[start + 3]!) : ipaddr.fromByteArray([...bytes.subarray(start, start + size)]).toString();
  const ports = at + 2 * size;
  const f = family === AF_INET ? 4 : 6;
  return {
    source: { family: f, address: text(at), port: (bytes[ports]! << 8) | bytes[ports + 1]! },
    destination: { family: f, address: text(at + size), port: (bytes[ports + 2]! << 8) | bytes[ports + 3]! },
  };
}

/** No TLVs (what a balancer sends unless told otherwise): one answer for every such header. */
const NO_TLVS: { readonly tlvs: readonly ProxyTlv[]; readonly crcAt: number } = Object.freeze({ tlvs: Object.freeze([]), crcAt: -1 });

/** The TLVs in bytes[start, end), and where a CRC32C value sits; undefined if malformed. */
function decodeTlvs(bytes: Uint8Array, start: number, end: number): { readonly tlvs: readonly ProxyTlv[]; readonly crcAt: number } | undefined {
  if (start >= end) return NO_TLVS;
  const tlvs: ProxyTlv[] = [];
  let crcAt = -1;
  for (let pos = start; pos < end; ) {
    if (pos + 3 > end) return undefined;
    const type = bytes[pos]!;
    const valueEnd = pos + 3 + ((bytes[pos + 1]! << 8) | bytes[pos + 2]!);
    if (valueEnd > end) return undefined;
    const value = Uint8Array.from(bytes.subarray(pos + 3, valueEnd)); // a copy (Buffer.slice would be a view)
    if (type === PP2_TYPE.CRC32C) {
      if (value.length !== 4 || crcAt >= 0) return undefined;
      crcAt = pos + 3;
    }
    if (type === PP2_TYPE.UNIQUE_ID && value.length > MAX_UNIQUE_ID) return undefined;
    tlvs.push({ type, value });
    pos = valueEnd;
  }
  return { tlvs, crcAt };
}

/** The CRC32C of the header with the checksum's own value zeroed equals that value. */
function crcMatches(header: Uint8Array, crcAt: number): boolean {
  const copy = Buffer.from(header);
  const expected = copy.readUInt32BE(crcAt);
  copy.fill(0, crcAt, crcAt + 4);
  return crc32c(copy) === expected;
}

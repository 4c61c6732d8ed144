/**
 * The SOCKS5 address field (RFC 1928 section 5), shared by requests, replies and UDP datagrams:
 *
 *   ATYP(1): 1 IPv4 | 3 domain name | 4 IPv6;  ADDR: 4 bytes | length(1) + name | 16 bytes;  PORT(2)
 *
 * A domain name read off the wire passes the same check as a sniffed name (dns-name.ts), so a
 * hostile proxy cannot put control characters into our logs.
 */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../errors.js';
import type { Endpoint } from '../net/sockaddr.js';
import { normalizeDnsName } from '../sniff/dns-name.js';
import { dnsNameFromBytes } from '../sniff/dns-name.js';

export const ATYP_IPV4 = 1;
export const ATYP_DOMAIN = 3;
export const ATYP_IPV6 = 4;

/** An IP endpoint, or a name and port for the proxy to resolve. */
export type Socks5Address = Endpoint | { readonly family: 'domain'; readonly name: string; readonly port: number };

export type Socks5AddressError = 'truncated' | 'bad-address-type' | 'bad-domain';

/** ATYP, address and port. Throws TproxyError for a name that is not a DNS name. */
export function encodeSocks5Address(address: Socks5Address): Buffer {
  const port = Buffer.of(address.port >> 8, address.port & 0xff);
  if (address.family === 'domain') {
    const name = normalizeDnsName(address.name);
    if (name === undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', `${JSON.stringify(address.name)} is not a domain name a SOCKS5 request can carry`, { name: address.name });
    return Buffer.concat([Buffer.of(ATYP_DOMAIN, name.length), Buffer.from(name, 'latin1'), port]);
  }
  const bytes = ipaddr.parse(address.address).toByteArray();
  return Buffer.concat([Buffer.of(bytes.length === 4 ? ATYP_IPV4 : ATYP_IPV6, ...bytes), port]);
}

/** Bytes the address at `at` needs in all, once its first two bytes are known; -1 for an unknown ATYP. */
export function socks5AddressLength(bytes: Uint8Array, at: number): number {
  const atyp = bytes[at];
  if (atyp === ATYP_IPV4) return 1 + 4 + 2;
  if (atyp === ATYP_IPV6) return 1 + 16 + 2;
  if (atyp === ATYP_DOMAIN) return at + 1 < bytes.length ? 1 + 1 + bytes[at + 1]! + 2 : 2;
  return -1;
}

/** The address at `at`, and the offset after it. */
export function decodeSocks5Address(bytes: Uint8Array, at: number): { readonly address: Socks5Address; readonly end: number } | { readonly error: Socks5AddressError } {
  if (at >= bytes.length) return { error: 'truncated' };
  const length = socks5AddressLength(bytes, at);
  if (length < 0) return { error: 'bad-address-type' };
  const end = at + length;
  if (end > bytes.length) return { error: 'truncated' };
  const port = (bytes[end - 2]! << 8) | bytes[end - 1]!;
  switch (bytes[at]) {
    case ATYP_IPV4:
      return { address: { family: 4, address: `${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}.${bytes[at + 4]}`, port }, end };
    case ATYP_IPV6:
      return { address: { family: 6, address: ipaddr.fromByteArray([...bytes.subarray(at + 1, at + 17)]).toString(), port }, end };
    default: {
      const name = dnsNameFromBytes(bytes, at + 2, end - 2);
      return name === undefined ? { error: 'bad-domain' } : { address: { family: 'domain', name, port }, end };
    }
  }
}

/**
 * Where to send datagrams for a UDP ASSOCIATE whose reply named `relay`: many servers answer
 * 0.0.0.0 or :: ("the address you reached me on"), which means the proxy's own address.
 */
export function udpRelayEndpoint(relay: Socks5Address, proxy: Endpoint): Socks5Address {
  if (relay.family === 'domain') return relay;
  const unspecified = relay.family === 4 ? relay.address === '0.0.0.0' : relay.address === '::';
  return unspecified ? { family: proxy.family, address: proxy.address, port: relay.port } : relay;
}

/**
 * The header of every datagram between a SOCKS5 client and its UDP relay (RFC 1928 section 7):
 *
 *   RSV(2)=0 | FRAG(1) | ATYP | DST.ADDR | DST.PORT | DATA
 *
 * From the client, DST is where the datagram goes; from the relay, it is where the reply came
 * from. Fragments (FRAG != 0) are refused: fragmentation is optional in the RFC, servers do not
 * send it, and reassembly would be a buffer any sender could fill; the caller drops and counts them.
 */
import { decodeSocks5Address, encodeSocks5Address, type Socks5Address, type Socks5AddressError } from './socks5-address.js';

export type Socks5UdpInvalidReason = 'truncated' | 'bad-reserved' | 'fragmented' | Exclude<Socks5AddressError, 'truncated'>;

export type Socks5UdpDecodeResult =
  /** `payload` is a view into the datagram, not a copy. */
  | { readonly kind: 'datagram'; readonly destination: Socks5Address; readonly payload: Uint8Array }
  | { readonly kind: 'invalid'; readonly reason: Socks5UdpInvalidReason };

/** Header bytes before the payload for an IPv4 / IPv6 destination (for buffer sizing). */
export const SOCKS5_UDP_HEADER_IPV4 = 10;
export const SOCKS5_UDP_HEADER_IPV6 = 22;

export function encodeSocks5UdpDatagram(destination: Socks5Address, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(0, 0, 0), encodeSocks5Address(destination), payload]);
}

export function decodeSocks5UdpDatagram(bytes: Uint8Array): Socks5UdpDecodeResult {
  if (bytes.length < 4) return { kind: 'invalid', reason: 'truncated' };
  if (bytes[0] !== 0 || bytes[1] !== 0) return { kind: 'invalid', reason: 'bad-reserved' };
  if (bytes[2] !== 0) return { kind: 'invalid', reason: 'fragmented' };
  const decoded = decodeSocks5Address(bytes, 3);
  if ('error' in decoded) return { kind: 'invalid', reason: decoded.error };
  return { kind: 'datagram', destination: decoded.address, payload: bytes.subarray(decoded.end) };
}

/**
 * Reading a PROXY header off the front of a connection or a datagram, in the house style of the
 * upstream handshakes: the caller peeks, offers the bytes, and on a 'header' reads exactly `take`
 * bytes; everything after them (the client's first bytes, in the same read) stays for the relay.
 *
 * Told apart by the first byte ('P' for v1, CR for v2), and refused as soon as the bytes cannot be
 * a header, so a sender of garbage is cut without waiting for a timeout. The bound on a v2 header
 * (`maxV2Bytes`) is checked on its declared length, before anything is waited for.
 */
import { V1_MAX_BYTES, V2_FIXED_BYTES, proxyInvalid, type ProxyDecodeResult } from './header.js';
import { decodeProxyHeaderV1 } from './v1.js';
import { decodeProxyHeaderV2 } from './v2.js';

export interface ProxyDecodeLimits {
  /**
   * The longest v2 header accepted, fixed part and addresses and TLVs included. The specification
   * allows 65,551; real balancers send well under 512 (AWS NLB with its VPC endpoint TLV: ~100).
   */
  readonly maxV2Bytes: number;
}

export const DEFAULT_PROXY_LIMITS: ProxyDecodeLimits = { maxV2Bytes: 2048 };

/** The longest header that decoding with `limits` can need: peek this much to get a final answer. */
export function maxProxyHeaderBytes(limits: ProxyDecodeLimits = DEFAULT_PROXY_LIMITS): number {
  return Math.max(V1_MAX_BYTES, limits.maxV2Bytes);
}

export function decodeProxyHeader(bytes: Uint8Array, limits: ProxyDecodeLimits = DEFAULT_PROXY_LIMITS): ProxyDecodeResult {
  if (bytes.length === 0) return { kind: 'more' };
  if (bytes[0] === 0x50) return decodeProxyHeaderV1(bytes);
  if (bytes[0] === 0x0d) return decodeProxyHeaderV2(bytes, Math.max(limits.maxV2Bytes, V2_FIXED_BYTES));
  return proxyInvalid('bad-signature');
}

/**
 * A header at the front of a whole datagram (PROXY v2 over UDP: one header per datagram, as
 * go-mmproxy sends): a prefix is 'truncated', not 'more', and v1 (TCP only) is refused.
 */
export function decodeProxyDatagram(datagram: Uint8Array, limits: ProxyDecodeLimits = DEFAULT_PROXY_LIMITS): ProxyDecodeResult {
  if (datagram[0] === 0x50) return proxyInvalid('v1-datagram');
  const result = decodeProxyHeader(datagram, limits);
  return result.kind === 'more' ? proxyInvalid('truncated') : result;
}

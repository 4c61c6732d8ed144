/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2): what a load balancer
 * or a proxy tells the next hop about the connection it relays. The same value type for both
 * versions; v1 can carry only TCP over IPv4/IPv6 (or UNKNOWN), v2 adds LOCAL, UDP and TLVs.
 */
import type { Endpoint } from '../net/sockaddr.js';

/** 'proxy': relayed on behalf of `source`; 'local': the sender's own connection (health checks). */
export type ProxyCommand = 'proxy' | 'local';
/** v2 STREAM / DGRAM / UNSPEC (v1 TCP4/TCP6 are 'tcp', UNKNOWN is 'unspec'). */
export type ProxyTransport = 'tcp' | 'udp' | 'unspec';

/** A type-length-value extension of a v2 header, kept as bytes whether we know its type or not. */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Uint8Array;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  readonly command: ProxyCommand;
  readonly transport: ProxyTransport;
  /**
   * The relayed connection's endpoints, both of one family; absent for 'unspec' (v1 UNKNOWN, v2
   * AF_UNSPEC) and for a LOCAL header, whose addresses the receiver must ignore.
   */
  readonly addresses?: { readonly source: Endpoint; readonly destination: Endpoint };
  readonly tlvs: readonly ProxyTlv[];
}

/** PP2_TYPE_* from the specification (section 2.2). Types 0xE0-0xEF are for private use (AWS: 0xEA). */
export const PP2_TYPE = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
} as const;

/** The 12-byte v2 signature: \r\n\r\n\0\r\nQUIT\n. */
export const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
/** Signature, version/command, family/transport, length. */
export const V2_FIXED_BYTES = 16;
/** "PROXY " */
export const V1_PREFIX = Uint8Array.of(0x50, 0x52, 0x4f, 0x58, 0x59, 0x20);
/** The longest v1 line, CRLF included (the specification's 107 bytes). */
export const V1_MAX_BYTES = 107;

/** Why a header was refused; stable, for counters and logs. */
export type ProxyInvalidReason =
  | 'bad-signature' // neither "PROXY " nor the v2 signature
  | 'truncated' // a datagram (or a closed stream) ended inside the header
  | 'v1-datagram' // a v1 header on a datagram (v1 is for TCP only)
  | 'v1-no-crlf' // no CRLF within the first 107 bytes
  | 'v1-malformed' // a v1 line that is not PROXY TCP4|TCP6|UNKNOWN with valid addresses and ports
  | 'v2-version' // version nibble other than 2
  | 'v2-command' // command other than LOCAL or PROXY
  | 'v2-family' // an address family or transport the specification does not define, or AF_UNIX with PROXY
  | 'v2-too-long' // the declared length is beyond the configured bound
  | 'v2-address-truncated' // the declared length cannot hold the family's addresses
  | 'v2-tlv-malformed' // a TLV runs past the header, or a known TLV has an impossible length
  | 'v2-crc32c-mismatch'; // a PP2_TYPE_CRC32C that does not match the header

export type ProxyDecodeResult =
  /** A complete header: the first `take` bytes are the header; what follows is the relayed data. */
  | { readonly kind: 'header'; readonly header: ProxyHeader; readonly take: number }
  /** A valid prefix of a header: wait for more bytes (claim none yet). */
  | { readonly kind: 'more' }
  | { readonly kind: 'invalid'; readonly reason: ProxyInvalidReason };

export const PROXY_MORE: ProxyDecodeResult = Object.freeze({ kind: 'more' });
export const proxyInvalid = (reason: ProxyInvalidReason): ProxyDecodeResult => ({ kind: 'invalid', reason });

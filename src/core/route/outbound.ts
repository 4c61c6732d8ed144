/**
 * Outbounds: the ways a flow can leave. `direct` (this host's address), `transparent` (the
 * client's address and port), `socks5` / `http` (through an upstream proxy), `reject` (TCP: reset;
 * UDP: dropped and counted). `direct`, `transparent` and `reject` are built in under their own
 * names; a named outbound adds a proxy or a PROXY protocol header toward its next hop. Pure.
 */
import type { Transport } from '../net/constants.js';
import { formatUpstreamProxy, type UpstreamProxy } from '../upstream/proxy-url.js';

export const OUTBOUND_KINDS = ['direct', 'transparent', 'socks5', 'http', 'reject'] as const;
export type OutboundKind = (typeof OUTBOUND_KINDS)[number];

export const PROXY_PROTOCOL_VERSIONS = ['v1', 'v2'] as const;
export type ProxyProtocolVersion = (typeof PROXY_PROTOCOL_VERSIONS)[number];

interface OutboundBase {
  readonly name: string;
  /** A PROXY protocol header sent to the next hop before the client's bytes (TCP), or per datagram (UDP, v2 only). */
  readonly proxyProtocol?: ProxyProtocolVersion;
}

export type Outbound =
  | (OutboundBase & { readonly kind: 'direct' | 'transparent' })
  | (OutboundBase & { readonly kind: 'socks5' | 'http'; readonly proxy: UpstreamProxy })
  | { readonly name: string; readonly kind: 'reject' };

/** The outbounds every configuration has, named after their kind. */
export const BUILT_IN_OUTBOUNDS: readonly Outbound[] = [
  { name: 'direct', kind: 'direct' },
  { name: 'transparent', kind: 'transparent' },
  { name: 'reject', kind: 'reject' },
];

export function isBuiltInOutbound(name: string): boolean {
  return BUILT_IN_OUTBOUNDS.some((o) => o.name === name);
}

/**
 * Whether the outbound can carry flows of `transport`. HTTP CONNECT is TCP only; SOCKS5 carries
 * UDP by UDP ASSOCIATE (dataplane/udp/socks5-association.ts); a PROXY header per UDP datagram is
 * not built.
 */
export function carries(outbound: Outbound, transport: Transport): boolean {
  if (transport === 'tcp' || outbound.kind === 'reject') return true;
  return (outbound.kind === 'direct' || outbound.kind === 'transparent' || outbound.kind === 'socks5') && outbound.proxyProtocol === undefined;
}

/** One line for logs, status and explain: `corp (socks5://alice:***@192.0.2.7:1080, PROXY v2)`; never a password. */
export function formatOutbound(outbound: Outbound): string {
  const parts: string[] = [];
  if (outbound.kind === 'socks5' || outbound.kind === 'http') parts.push(formatUpstreamProxy(outbound.proxy));
  else if (outbound.name !== outbound.kind) parts.push(outbound.kind);
  if (outbound.kind !== 'reject' && outbound.proxyProtocol) parts.push(`PROXY ${outbound.proxyProtocol}`);
  return parts.length === 0 ? outbound.name : `${outbound.name} (${parts.join(', ')})`;
}

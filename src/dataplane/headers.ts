/**
 * IP header fields of the packets the proxy itself sends for a listener's flows: toward servers
 * (the upstream sockets) and back to clients (the accepted TCP sockets, the UDP reply sockets).
 * The intercepted packets end at the proxy's sockets, so this, not a rule, is what reaches the wire.
 * One value per listener; the engines read it from here only.
 */
export interface SentHeaders {
  /**
   * DSCP code point (0-63) of every packet both ways; `copy`: each flow carries the DSCP its
   * client's first packet had (TCP: the SYN, read with TCP_SAVED_SYN; UDP: the datagram that opened
   * the session, IP_RECVTOS / IPV6_RECVTCLASS). Absent: the kernel's default (0).
   */
  readonly dscp?: number | 'copy';
  /** IPv4 TTL and IPv6 hop limit of every packet both ways; absent: the kernel's default (64). */
  readonly ttl?: number;
}

/** The fixed DSCP for sockets opened before a flow is known (listeners), undefined for `copy`. */
export function fixedDscp(headers: SentHeaders): number | undefined {
  return typeof headers.dscp === 'number' ? headers.dscp : undefined;
}

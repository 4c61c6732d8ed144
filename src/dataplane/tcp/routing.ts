/** What both TCP engines do to route a new flow, the PROXY header it sends, and how its route shows in its events. */
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { RouteDecision, RouteFlow } from '../../core/route/table.js';
import type { Outbound } from '../../core/route/outbound.js';
import { encodeProxyHeaderV1 } from '../../core/proxy-protocol/v1.js';
import { encodeProxyHeaderV2 } from '../../core/proxy-protocol/v2.js';

export function routeFlowOf(client: Endpoint, destination: Endpoint, name?: string): RouteFlow {
  return { protocol: 'tcp', source: client.address, destination: destination.address, destinationPort: destination.port, ...(name === undefined ? {} : { name }) };
}

/** The route and outbound of a flow as event fields. */
export function routeFields(decision: RouteDecision): { route?: string; outbound: string } {
  return decision.route === undefined ? { outbound: decision.outbound.name } : { route: decision.route, outbound: decision.outbound.name };
}

/** The outbound's connections start with a PROXY header (ours, for the server). */
export const sendsProxyHeader = (outbound: Outbound): boolean => outbound.kind !== 'reject' && outbound.proxyProtocol !== undefined;

/**
 * The PROXY protocol header the outbound sends its next hop before the client's bytes (after a
 * proxy's handshake: the header is for the server behind the tunnel), or undefined.
 */
export function proxyHeaderFor(outbound: Outbound, client: Endpoint, destination: Endpoint): Buffer | undefined {
  if (outbound.kind === 'reject' || outbound.proxyProtocol === undefined) return undefined;
  const header = { command: 'proxy', transport: 'tcp', addresses: { source: client, destination } } as const;
  return outbound.proxyProtocol === 'v1' ? encodeProxyHeaderV1(header) : encodeProxyHeaderV2(header);
}

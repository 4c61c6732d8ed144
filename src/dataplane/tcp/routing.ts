/** What both TCP engines do to route a new flow, and how a flow's route shows in its events. */
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { RouteDecision, RouteFlow } from '../../core/route/table.js';

export function routeFlowOf(client: Endpoint, destination: Endpoint, name?: string): RouteFlow {
  return { protocol: 'tcp', source: client.address, destination: destination.address, destinationPort: destination.port, ...(name === undefined ? {} : { name }) };
}

/** The route and outbound of a flow as event fields. */
export function routeFields(decision: RouteDecision): { route?: string; outbound: string } {
  return decision.route === undefined ? { outbound: decision.outbound.name } : { route: decision.route, outbound: decision.outbound.name };
}

/** What both TCP engines do to route a new flow, and how a flow's route shows in its events. */
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { RouteDecision, RouteFlow, RouteTable } from '../../core/route/table.js';

export function routeFlowOf(client: Endpoint, destination: Endpoint, name?: string): RouteFlow {
  return { protocol: 'tcp', source: client.address, destination: destination.address, destinationPort: destination.port, ...(name === undefined ? {} : { name }) };
}

/** The route of a new flow whose name is not known (name routes do not match it). */
export function decideWithoutName(routes: RouteTable, client: Endpoint, destination: Endpoint): RouteDecision {
  const flow = routeFlowOf(client, destination);
  const first = routes.decideUnnamed(flow);
  return first === 'sniff' ? routes.decide(flow) : first;
}

/** The route and outbound of a flow as event fields. */
export function routeFields(decision: RouteDecision): { route?: string; outbound: string } {
  return decision.route === undefined ? { outbound: decision.outbound.name } : { route: decision.route, outbound: decision.outbound.name };
}

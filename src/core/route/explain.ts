/**
 * `tproxy explain` for routes: which route and outbound a flow would take on a listener, and
 * whether that listener would sniff its name first. Pure.
 */
import type { Transport } from '../net/constants.js';
import { formatOutbound } from './outbound.js';
import type { RoutingConfig } from './config.js';
import { type RouteDecision, RouteTable } from './table.js';

export interface RouteExplanation {
  readonly listener: string;
  readonly decision: RouteDecision;
  /** The listener would read the flow's first bytes (TCP) or first datagram (UDP) for its name. */
  readonly sniffed: boolean;
  readonly protocol: Transport;
  readonly name?: string;
}

export function explainRoute(routing: RoutingConfig, flow: { protocol: Transport; source: string; destination: string; destinationPort: number; name?: string }): RouteExplanation {
  const table = RouteTable.compile(routing);
  const first = table.decideUnnamed({ ...flow, name: undefined });
  const decision = first === 'sniff' ? table.decide(flow) : first;
  return { listener: routing.listener, decision, sniffed: first === 'sniff', protocol: flow.protocol, ...(flow.name === undefined ? {} : { name: flow.name }) };
}

const ACTIONS: Readonly<Record<string, string>> = {
  direct: 'connects to the destination from this host\'s address',
  transparent: 'connects to the destination from the client\'s address and port',
  socks5: 'asks the SOCKS5 proxy to connect to the destination',
  http: 'asks the HTTP proxy to CONNECT to the destination',
  reject: 'resets the connection (TCP) or drops the datagram (UDP), counted',
};

export function formatRouteExplanation(r: RouteExplanation): string {
  const o = r.decision.outbound;
  const lines = [`route (listener ${r.listener}):`];
  const udp = r.protocol === 'udp';
  const reads = udp ? 'reads the session\'s first datagram' : 'peeks at the first bytes';
  if (r.sniffed) lines.push(r.name === undefined ? `  a route matches on names: the listener ${reads} for the name (${udp ? 'QUIC Initial SNI' : 'TLS SNI, HTTP Host'}); none given here (--sni NAME${udp ? '' : ' or --host NAME'})` : `  name ${r.name} (the listener ${reads} for it)`);
  lines.push(r.decision.route === undefined ? '  no route matches: the listener\'s own outbound' : `  route ${r.decision.route} (routes[${r.decision.index ?? '?'}]) matches`);
  lines.push(`  outbound ${formatOutbound(o)}: ${ACTIONS[o.kind] ?? o.kind}${o.kind !== 'reject' && o.proxyProtocol ? `, after a PROXY ${o.proxyProtocol} header` : ''}`);
  return `${lines.join('\n')}\n`;
}

export function routeExplanationToJson(r: RouteExplanation): Record<string, unknown> {
  return {
    listener: r.listener,
    ...(r.decision.route === undefined ? {} : { route: r.decision.route, index: r.decision.index }),
    outbound: r.decision.outbound.name,
    outboundKind: r.decision.outbound.kind,
    outboundText: formatOutbound(r.decision.outbound),
    sniffed: r.sniffed,
    ...(r.name === undefined ? {} : { name: r.name }),
  };
}

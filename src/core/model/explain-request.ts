/**
 * One `tproxy explain` request, from the packet text to both answers (the text the CLI prints and
 * the JSON of --json): shared by the CLI and the dashboard's explain endpoint, so both give the
 * same result for the same packet. Pure: the snapshot of the host is taken by the caller.
 */
import type { TproxyConfig } from '../config/tproxy-config.js';
import { routingOf } from '../config/routing-of.js';
import { TproxyError } from '../errors.js';
import { explainRoute, formatRouteExplanation, routeExplanationToJson, type RouteExplanation } from '../route/explain.js';
import { normalizeDnsName } from '../sniff/dns-name.js';
import { formatIp } from '../net/address.js';
import { explainPacket } from './explain.js';
import { describeRuleSources, explanationToJson, formatExplanation } from './format.js';
import type { Packet } from './packet.js';
import { parsePacketText } from './packet-text.js';
import { worldFromSnapshot, type Snapshot } from './snapshot.js';

export interface ExplainRequest {
  /** The packet in PACKET_FORM. */
  readonly packet: string;
  /** The name sniffed from the flow (TLS SNI or HTTP Host), for name routes; needs config. */
  readonly sni?: string;
  readonly host?: string;
  /** The listener whose routes to follow; needs config. */
  readonly listener?: string;
}

export interface ExplainAnswer {
  readonly text: string;
  readonly json: Record<string, unknown>;
}

/** The route of the packet's flow on its listener: named, else the one its socket belongs to, else the one intercepting its port. */
function routeOfPacket(config: TproxyConfig, packet: Packet, socketPort: number | undefined, listenerName: string | undefined, name: string | undefined): RouteExplanation | undefined {
  const transport = packet.l4proto === 'udp' ? 'udp' : 'tcp';
  const listener =
    listenerName !== undefined
      ? config.listeners.find((l) => l.name === listenerName)
      : (config.listeners.find((l) => l.port === socketPort && l.intercept.some((s) => s.transport === transport)) ??
        config.listeners.find((l) => l.intercept.some((s) => s.transport === transport && s.ports.some((r) => packet.dport >= r.from && packet.dport <= r.to))));
  if (listenerName !== undefined && !listener) throw new TproxyError('ERR_INVALID_ARGUMENT', `--listener ${listenerName}: no such listener in the configuration (${config.listeners.map((l) => l.name).join(', ')})`);
  const routing = listener && routingOf(config).find((r) => r.listener === listener.name);
  if (!routing) return undefined;
  return explainRoute(routing, { protocol: transport, source: formatIp(packet.saddr), destination: formatIp(packet.daddr), destinationPort: packet.dport, ...(name === undefined ? {} : { name }) });
}

/**
 * Explain `request.packet` against `snapshot` (described as `state` in the first line); with
 * `config`, also the route and outbound its flow takes. Throws TproxyError ERR_INVALID_ARGUMENT
 * for a packet or a name that cannot be read.
 */
export function explainRequest(snapshot: Snapshot, state: string, request: ExplainRequest, config: TproxyConfig | undefined): ExplainAnswer {
  const { packet, origin, name: normalized } = checkExplainRequest(request, config !== undefined);
  const world = worldFromSnapshot(snapshot);
  const explanation = explainPacket(world, packet, { origin });
  const source = `${state}; rules read from ${describeRuleSources(world.ruleset)}`;
  const route = config && routeOfPacket(config, packet, explanation.socket?.local.port, request.listener, normalized);
  return {
    json: { ...explanationToJson(explanation), source, ...(route ? { route: routeExplanationToJson(route) } : {}) },
    text: `${source}\n${formatExplanation(packet, explanation)}${route ? formatRouteExplanation(route) : ''}`,
  };
}

/** The request read and checked before any work: the packet, its origin and the flow's name (normalized). */
export function checkExplainRequest(request: ExplainRequest, withConfig: boolean): ReturnType<typeof parsePacketText> & { readonly name?: string } {
  const { packet, origin } = parsePacketText(request.packet);
  if (request.sni !== undefined && request.host !== undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', '--sni and --host both name the flow: give one');
  const name = request.sni ?? request.host;
  if ((name !== undefined || request.listener !== undefined) && !withConfig) throw new TproxyError('ERR_INVALID_ARGUMENT', '--sni, --host and --listener need --config FILE (the routes are in it)');
  const normalized = name === undefined ? undefined : normalizeDnsName(name);
  if (name !== undefined && normalized === undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', `${request.sni !== undefined ? '--sni' : '--host'} ${JSON.stringify(name)}: not a DNS name (a sniffed name that is not one routes without a name)`);
  return { packet, origin, ...(normalized === undefined ? {} : { name: normalized }) };
}

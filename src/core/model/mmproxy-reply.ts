/**
 * The reply of an mmproxy listener's backend, followed through the model (issue 16). The listener
 * connects to the backend from the client's address and port (a transparent socket, SO_MARK the
 * listener's upstream mark): a TCP connection, or for `protocol: udp` a session socket bound to the
 * client's address and port and connected to the backend. The backend answers that client address
 * (a SYN-ACK, or a datagram from the backend's address and port), and the answer must come back to
 * the listener's socket (TCP's established lookup, or UDP's lookup where the connected session
 * socket scores above any wildcard one on the client's port):
 *
 *   backend on loopback:   backend -> routing (iif lo: `from 127.0.0.0/8 iif lo` makes it local)
 *                          -> output -> lo -> prerouting -> input -> the listener's socket
 *   backend elsewhere:     arrives on the interface towards the backend -> prerouting (the divert
 *                          rule finds the transparent socket, sets the fwmark) -> routing (the
 *                          fwmark rule, the local route) -> input -> the listener's socket
 *
 * The listener's socket for the flow is assumed (added to the world) when the snapshot holds no
 * flow in progress: the question is whether a flow's replies would reach it. Pure.
 */
import { formatIp, sameIp, type IpAddress } from '../net/address.js';
import type { Family } from '../net/constants.js';
import { explainPacket, type Explanation } from './explain.js';
import { TCP_FLAGS, type Packet } from './packet.js';
import { describeIpRule, describeRoute, routeLookup, type RouteDecision } from './routing.js';
import { describeSocket, type SocketEntry } from './sockets.js';
import type { World } from './world.js';

export interface Endpoint {
  readonly addr: IpAddress;
  readonly port: number;
}

export interface MmproxyFlow {
  /** tcp: a connection to the backend; udp: a session socket connected to it. */
  readonly transport: 'tcp' | 'udp';
  /** The client the PROXY header names: the listener's socket is bound to it. */
  readonly client: Endpoint;
  readonly backend: Endpoint;
  /** SO_MARK of the listener's connection to the backend. */
  readonly upstreamMark: number;
}

export type BackendPlace =
  /** On this host's loopback (127.0.0.0/8, ::1): the replies never leave the host. */
  | 'loopback'
  /** Another address of this host: the replies come from it and the main table sends them out. */
  | 'local-address'
  /** Reached through an interface. */
  | 'remote'
  /** No route from the client's address to it. */
  | 'unreachable';

export interface ReplyPath {
  readonly place: BackendPlace;
  /** How the listener's connection to the backend is routed (from the client's address, with the upstream mark). */
  readonly toBackend: RouteDecision;
  /** The interface the connection leaves by and the reply comes in on (remote backends). */
  readonly via?: string;
  /** The backend's first reply (SYN-ACK, or its first datagram for udp), as it enters this host. */
  readonly reply: Packet;
  readonly origin: 'local' | 'wire';
  /** The listener's socket for the flow. */
  readonly socket: SocketEntry;
  /** The snapshot had no such socket: it was added to follow the reply. */
  readonly assumed: boolean;
  readonly explanation: Explanation;
  /** The reply reached the listener's socket. */
  readonly reaches: boolean;
}

export function isLoopback(ip: IpAddress): boolean {
  return ip.family === 4 ? ip.value >> 24n === 127n : ip.value === 1n;
}

function sameEndpoint(a: { addr: IpAddress; port: number }, b: Endpoint): boolean {
  return a.port === b.port && sameIp(a.addr, b.addr);
}

/** Where the backend is, seen from the listener's socket (output routing from the client's address). */
export function backendRoute(world: World, flow: MmproxyFlow): { place: BackendPlace; decision: RouteDecision; via?: string } {
  const family: Family = flow.backend.addr.family;
  const { decision } = routeLookup(world.routing, { family, saddr: flow.client.addr, daddr: flow.backend.addr, iif: 'lo', mark: flow.upstreamMark });
  if (decision.kind === 'local') return { place: isLoopback(flow.backend.addr) ? 'loopback' : 'local-address', decision };
  if (decision.kind === 'unicast') return { place: 'remote', decision, ...(decision.route.dev !== undefined ? { via: decision.route.dev } : {}) };
  return { place: 'unreachable', decision };
}

/** Follow the backend's first reply to the listener's socket. */
export function mmproxyReplyPath(world: World, flow: MmproxyFlow): ReplyPath {
  const { place, decision, via } = backendRoute(world, flow);
  const family = flow.client.addr.family;
  const l4proto = flow.transport;
  const found = world.sockets.find((s) => s.l4proto === l4proto && s.state === 'established' && s.remote !== undefined && sameEndpoint(s.local, flow.client) && sameEndpoint(s.remote, flow.backend));
  const socket: SocketEntry = found ?? { l4proto, family, state: 'established', local: flow.client, remote: flow.backend, transparent: true, transparentSource: 'given', process: 'tproxy mmproxy', mark: flow.upstreamMark };
  const withSocket: World = found ? world : { ...world, sockets: [socket, ...world.sockets] };
  const origin = place === 'remote' || place === 'unreachable' ? 'wire' : 'local';
  const reply: Packet = {
    family,
    l4proto,
    saddr: flow.backend.addr,
    daddr: flow.client.addr,
    sport: flow.backend.port,
    dport: flow.client.port,
    tcpFlags: l4proto === 'tcp' ? TCP_FLAGS.syn! | TCP_FLAGS.ack! : 0,
    ...(origin === 'wire' && via !== undefined ? { iif: via } : {}),
    mark: 0,
    dscp: 0,
    ecn: 0,
    ttl: 64,
    ctState: 'established',
  };
  const explanation = explainPacket(withSocket, reply, { origin });
  const reaches = explanation.outcome.kind === 'delivered' && explanation.socket !== undefined && explanation.socket.remote !== undefined && sameEndpoint(explanation.socket.local, flow.client) && sameEndpoint(explanation.socket.remote, flow.backend);
  return { place, toBackend: decision, ...(via !== undefined ? { via } : {}), reply, origin, socket, assumed: !found, explanation, reaches };
}

/** `[2001:db8::1]:80` / `192.0.2.1:80` */
export function formatEndpoint(e: Endpoint): string {
  return e.addr.family === 6 ? `[${formatIp(e.addr)}]:${e.port}` : `${formatIp(e.addr)}:${e.port}`;
}

/** One line for what the reply path says. */
export function describeReplyPath(path: ReplyPath): string {
  const where = path.place === 'remote' ? `on another host (via ${path.via ?? '?'})` : path.place === 'loopback' ? 'on loopback' : path.place === 'local-address' ? 'on an address of this host that is not loopback' : 'unreachable';
  const result = path.reaches ? `reaches ${describeSocket(path.socket)}` : `does not reach the listener's socket (${path.explanation.outcome.kind === 'dropped' ? `dropped: ${path.explanation.outcome.by}` : path.explanation.outcome.kind})`;
  return `backend ${formatEndpoint(path.socket.remote!)} ${where}: its ${path.reply.l4proto === 'udp' ? 'reply datagram' : 'reply'} to ${formatEndpoint(path.socket.local)} ${result}`;
}

/**
 * What brings the reply back, in words: the ip rule and route that make it local (with the mark it
 * carries then: the divert rule's, for a backend elsewhere), or why nothing does.
 */
export function replySummary(world: World, path: ReplyPath): string[] {
  const lines = [`mmproxy reply: ${describeReplyPath(path)}`];
  const own = path.reply.l4proto === 'udp' ? 'the listener\'s session socket (bound to the client, connected to the backend)' : 'the listener\'s connection';
  lines.push(`${own}: ${describeSocket(path.socket)}${path.assumed ? ' (no such flow now: assumed, to follow its replies)' : ''}`);
  if (path.place === 'local-address') lines.push('the backend is an address of this host but not loopback: it answers from it, and the main table sends the reply out of the host');
  if (path.place === 'unreachable') lines.push('no route to the backend from the client\'s address: the connection cannot be made');
  const iif = path.origin === 'local' ? 'lo' : (path.via ?? 'lo');
  // A local reply is routed as the backend sends it (output routing, its own mark); one from the
  // wire after prerouting, with the mark the divert rule gave it.
  const mark = path.origin === 'local' ? path.reply.mark : path.explanation.packet.mark;
  const { decision } = routeLookup(world.routing, { family: path.reply.family, saddr: path.reply.saddr, daddr: path.reply.daddr, iif, mark });
  if (decision.kind === 'local') {
    const how = path.origin === 'local' ? 'sent by the backend on this host (iif lo)' : `arriving on ${iif} with mark 0x${mark.toString(16)}${mark !== 0 ? ' (set by the divert rule: the packet belongs to a transparent socket)' : ''}`;
    lines.push(`brought back by: ip rule ${describeIpRule(decision.rule)} -> ${describeRoute(decision.route)}, ${how}`);
  }
  return lines;
}

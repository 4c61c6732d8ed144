/**
 * The path of one packet through the host, stage by stage:
 *
 *   from the wire:  prerouting -> routing (ip rules, tables) -+-> input -> socket    (delivered)
 *                                                             +-> forward -> postrouting (forwarded)
 *   from a local socket: routing -> output (reroute when a route chain changed the mark or
 *                        addresses) -> postrouting -+-> out of an interface (sent)
 *                                                   +-> via lo: prerouting -> input -> socket
 *
 * A tproxy statement assigns the socket (skb->sk) in prerouting; routing must then make the packet
 * local, or ip_forward drops it. Without an assigned socket, delivery is the ordinary lookup.
 */
import { formatIp } from '../net/address.js';
import { evaluateHook, type HookEnvironment, type HookResult } from './evaluate.js';
import { isPureSyn, type Packet } from './packet.js';
import { describeIpRule, describeRoute, routeLookup, type RouteDecision } from './routing.js';
import type { Hook } from './ruleset.js';
import { describeSocket, lookupEstablished, lookupListener, lookupSocket, type SocketEntry } from './sockets.js';
import type { RuleRef, TraceStep } from './trace.js';
import { fibAddressType, forwardingEnabled, tproxyLocalAddress, type World } from './world.js';

export type Outcome =
  /** A local socket receives it (`via`: tproxy assigned it, or the ordinary socket lookup). */
  | { readonly kind: 'delivered'; readonly via: 'tproxy' | 'lookup' }
  /** A TIME_WAIT socket answers it (an ACK or RST); no application sees it. */
  | { readonly kind: 'answered-by-time-wait' }
  | { readonly kind: 'forwarded' }
  /** A locally generated packet leaves through an interface. */
  | { readonly kind: 'sent' }
  | { readonly kind: 'dropped'; readonly stage: 'netfilter' | 'routing' | 'forward' | 'socket'; readonly by: string; readonly reply?: string };

export interface Explanation {
  readonly outcome: Outcome;
  readonly socket?: SocketEntry;
  readonly oif?: string;
  /** The packet as delivered or as it leaves (mark, DSCP, TTL after every statement). */
  readonly packet: Packet;
  readonly trace: readonly TraceStep[];
  /** Rules whose counters the packet increments. */
  readonly counted: readonly RuleRef[];
  /** Something on the path was not modelled: the answer may be wrong there. */
  readonly uncertain: boolean;
}

export interface ExplainOptions {
  /** `wire` (arrives on packet.iif) or `local` (sent by a local process). Default: wire. */
  readonly origin?: 'wire' | 'local';
}

class Walk {
  readonly trace: TraceStep[] = [];
  readonly counted: RuleRef[] = [];
  uncertain = false;
  constructor(readonly world: World) {}

  env(oif?: string): HookEnvironment {
    return {
      ruleset: this.world.ruleset,
      sockets: this.world.sockets,
      fibAddressType: (p) => fibAddressType(this.world, p),
      tproxyLocalAddress: (p) => tproxyLocalAddress(this.world, p),
      ...(oif !== undefined ? { oif } : {}),
    };
  }

  hook(hook: Hook, packet: Packet, oif?: string, assigned?: SocketEntry): HookResult {
    const r = evaluateHook(hook, packet, this.env(oif), assigned);
    this.trace.push(...r.steps);
    this.counted.push(...r.counted);
    if (r.uncertain) this.uncertain = true;
    return r;
  }

  route(packet: Packet, iif: string): RouteDecision {
    const { decision, tried } = routeLookup(this.world.routing, { family: packet.family, saddr: packet.saddr, daddr: packet.daddr, iif, mark: packet.mark });
    for (const t of tried) this.trace.push({ stage: 'routing', matched: t.matched, text: `ip rule ${describeIpRule(t.rule)}: ${t.result}` });
    const text =
      decision.kind === 'none'
        ? `no route to ${formatIp(packet.daddr)} (mark ${packet.mark})`
        : decision.kind === 'local' || decision.kind === 'unicast'
          ? `${decision.kind === 'local' ? 'local delivery' : 'forward'}: ${describeRoute(decision.route)}`
          : `${decision.kind}${decision.route ? `: ${describeRoute(decision.route)}` : ` (ip rule ${decision.rule.priority})`}`;
    this.trace.push({ stage: 'routing', text: `routing decision: ${text}` });
    return decision;
  }

  done(outcome: Outcome, packet: Packet, extra: { socket?: SocketEntry; oif?: string } = {}): Explanation {
    return { outcome, packet, ...extra, trace: this.trace, counted: this.counted, uncertain: this.uncertain };
  }

  dropped(stage: 'netfilter' | 'routing' | 'forward' | 'socket', by: string, packet: Packet, reply?: string): Explanation {
    this.trace.push({ stage: stage === 'netfilter' ? 'note' : stage === 'socket' ? 'deliver' : stage, text: `dropped: ${by}${reply ? ` (answers with ${reply})` : ''}` });
    return this.done({ kind: 'dropped', stage, by, ...(reply ? { reply } : {}) }, packet);
  }
}

function routeFailure(walk: Walk, decision: RouteDecision, packet: Packet): Explanation {
  if (decision.kind === 'none') return walk.dropped('routing', `no route to ${formatIp(packet.daddr)}`, packet, 'icmp net-unreachable');
  const reply = decision.kind === 'blackhole' ? undefined : `icmp ${decision.kind === 'prohibit' ? 'admin-prohibited' : 'host-unreachable'}`;
  const where = 'route' in decision && decision.route ? describeRoute(decision.route) : `ip rule ${decision.rule.priority}`;
  return walk.dropped('routing', `${decision.kind} (${where})`, packet, reply);
}

/** Input hook and socket demultiplexing for a packet routed to this host. */
function deliverLocally(walk: Walk, packet: Packet, assigned: SocketEntry | undefined, assignedBy: 'tproxy' | 'early demux' = 'tproxy'): Explanation {
  const input = walk.hook('input', packet, undefined, assigned);
  if (input.verdict === 'drop') return walk.dropped('netfilter', input.drop?.by ?? 'input hook', input.packet, input.drop?.reject);
  const p = input.packet;
  const sockets = walk.world.sockets;
  if (assigned) {
    if (assigned.state === 'time-wait') {
      walk.trace.push({ stage: 'deliver', text: `the TIME_WAIT socket ${describeSocket(assigned)} that ${assignedBy} assigned answers it` });
      return walk.done({ kind: 'answered-by-time-wait' }, p, { socket: assigned });
    }
    walk.trace.push({ stage: 'deliver', text: `delivered to the socket ${assignedBy} assigned: ${describeSocket(assigned)}` });
    return walk.done({ kind: 'delivered', via: assignedBy === 'tproxy' ? 'tproxy' : 'lookup' }, p, { socket: assigned });
  }
  let sk = lookupSocket(sockets, p);
  if (sk?.state === 'time-wait') {
    if (isPureSyn(p)) {
      const listener = lookupListener(sockets, p, p.daddr, p.dport);
      walk.trace.push({ stage: 'deliver', text: `new SYN on the TIME_WAIT pair ${describeSocket(sk)}: ${listener ? `listener ${describeSocket(listener)} takes it` : `no listener on port ${p.dport}, the TIME_WAIT socket answers with an ACK`}` });
      if (!listener) return walk.done({ kind: 'answered-by-time-wait' }, p, { socket: sk });
      sk = listener;
    } else {
      walk.trace.push({ stage: 'deliver', text: `the TIME_WAIT socket ${describeSocket(sk)} answers it` });
      return walk.done({ kind: 'answered-by-time-wait' }, p, { socket: sk });
    }
  }
  if (!sk) {
    const reply = p.l4proto === 'tcp' ? 'tcp reset' : 'icmp port-unreachable';
    return walk.dropped('socket', `no local socket for ${p.family === 6 ? `[${formatIp(p.daddr)}]` : formatIp(p.daddr)}:${p.dport}`, p, reply);
  }
  walk.trace.push({ stage: 'deliver', text: `delivered by the socket lookup to ${describeSocket(sk)}` });
  return walk.done({ kind: 'delivered', via: 'lookup' }, p, { socket: sk });
}

/** A packet that arrives on an interface (or loops back through lo with a route already chosen). */
function incoming(walk: Walk, packetIn: Packet, looped?: RouteDecision): Explanation {
  const pre = walk.hook('prerouting', packetIn);
  if (pre.verdict === 'drop') return walk.dropped('netfilter', pre.drop?.by ?? 'prerouting hook', pre.packet, pre.drop?.reject);
  let packet = pre.packet;
  let assigned = pre.assigned;
  if (!assigned && !looped && packet.l4proto === 'tcp' && earlyDemuxEnabled(walk.world)) {
    // ip_rcv_finish's early demux: an established (or TIME_WAIT) socket for the 4-tuple takes the
    // packet (skb->sk) before routing; if routing then forwards it, ip_forward drops it (measured:
    // the cached input route of a proxied socket is not used, IPv4 and IPv6 alike).
    const sk = lookupEstablished(walk.world.sockets, packet);
    if (sk) {
      walk.trace.push({ stage: 'routing', text: `early demux: ${describeSocket(sk)} takes the packet (skb->sk); routing still decides` });
      assigned = sk;
    }
  }
  const decision = looped ?? walk.route(packet, packet.iif ?? 'lo');
  if (looped) walk.trace.push({ stage: 'routing', text: 'looped back through lo: the output route (local delivery) still holds' });
  if (decision.kind === 'local') return deliverLocally(walk, packet, assigned, pre.assigned ? 'tproxy' : 'early demux');
  if (decision.kind !== 'unicast') return routeFailure(walk, decision, packet);
  if (assigned) {
    const why = pre.assigned ? 'the fwmark ip rule or the local route of its table is missing' : 'a local socket holds this flow but nothing marks its packets local (divert rule missing?)';
    return walk.dropped('forward', `the packet carries a socket (${describeSocket(assigned)}) but routing forwards it, and ip_forward drops such packets: ${why}`, packet);
  }
  const fwd = forwardingEnabled(walk.world, packet.family, packet.iif);
  if (fwd === false) return walk.dropped('forward', `forwarding is disabled (${packet.family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding'} = 0)`, packet, packet.family === 4 ? 'icmp host-unreachable' : undefined);
  if (packet.ttl <= 1) return walk.dropped('forward', `${packet.family === 4 ? 'TTL' : 'hop limit'} ${packet.ttl} expires in forwarding`, packet, 'icmp time-exceeded');
  packet = { ...packet, ttl: packet.ttl - 1 };
  const oif = decision.route.dev;
  walk.trace.push({ stage: 'forward', text: `forwarded towards ${oif ?? '?'}${decision.route.gateway ? ` via ${decision.route.gateway}` : ''}, ${packet.family === 4 ? 'TTL' : 'hop limit'} now ${packet.ttl}` });
  const forward = walk.hook('forward', packet, oif);
  if (forward.verdict === 'drop') return walk.dropped('netfilter', forward.drop?.by ?? 'forward hook', forward.packet, forward.drop?.reject);
  const post = walk.hook('postrouting', forward.packet, oif);
  if (post.verdict === 'drop') return walk.dropped('netfilter', post.drop?.by ?? 'postrouting hook', post.packet, post.drop?.reject);
  return walk.done({ kind: 'forwarded' }, post.packet, oif !== undefined ? { oif } : {});
}

function earlyDemuxEnabled(world: World): boolean {
  return world.sysctls['net.ipv4.ip_early_demux'] !== '0' && world.sysctls['net.ipv4.tcp_early_demux'] !== '0';
}

function outgoing(walk: Walk, packetIn: Packet): Explanation {
  const local = { ...packetIn };
  delete (local as { iif?: string }).iif;
  let decision = walk.route(local, 'lo');
  if (decision.kind !== 'local' && decision.kind !== 'unicast') return routeFailure(walk, decision, local);
  const out = walk.hook('output', local, decision.kind === 'local' ? 'lo' : decision.route.dev);
  if (out.verdict === 'drop') return walk.dropped('netfilter', out.drop?.by ?? 'output hook', out.packet, out.drop?.reject);
  let packet = out.packet;
  if (out.reroute) {
    walk.trace.push({ stage: 'routing', text: 'a type route chain changed the mark, addresses or DSCP: routing again' });
    decision = walk.route(packet, 'lo');
    if (decision.kind !== 'local' && decision.kind !== 'unicast') return routeFailure(walk, decision, packet);
  }
  const oif = decision.kind === 'local' ? 'lo' : decision.route.dev;
  const post = walk.hook('postrouting', packet, oif);
  if (post.verdict === 'drop') return walk.dropped('netfilter', post.drop?.by ?? 'postrouting hook', post.packet, post.drop?.reject);
  packet = post.packet;
  if (decision.kind === 'unicast') {
    walk.trace.push({ stage: 'forward', text: `sent out of ${oif ?? '?'}` });
    return walk.done({ kind: 'sent' }, packet, oif !== undefined ? { oif } : {});
  }
  walk.trace.push({ stage: 'routing', text: 'local route: the packet loops back through lo and enters prerouting with iif lo' });
  return incoming(walk, { ...packet, iif: 'lo' }, decision);
}

/** What the kernel described by `world` does with `packet`, and why. */
export function explainPacket(world: World, packet: Packet, options: ExplainOptions = {}): Explanation {
  const walk = new Walk(world);
  return options.origin === 'local' ? outgoing(walk, packet) : incoming(walk, packet);
}

/** An explanation as JSON-ready data and as a few readable lines. */
import { formatIp } from '../net/address.js';
import type { Explanation, Outcome } from './explain.js';
import { hex, tcpFlagNames, type Packet } from './packet.js';
import { describeSocket, type SocketEntry } from './sockets.js';
import type { Ruleset, Table } from './ruleset.js';

function endpoint(family: 4 | 6, addr: string, port: number): string {
  return family === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export function packetToJson(p: Packet): Record<string, unknown> {
  return {
    family: p.family === 4 ? 'ipv4' : 'ipv6',
    l4proto: p.l4proto,
    saddr: formatIp(p.saddr),
    sport: p.sport,
    daddr: formatIp(p.daddr),
    dport: p.dport,
    ...(p.l4proto === 'tcp' ? { tcpFlags: tcpFlagNames(p.tcpFlags) } : {}),
    ...(p.iif !== undefined ? { iif: p.iif } : {}),
    mark: hex(p.mark),
    dscp: p.dscp,
    [p.family === 4 ? 'ttl' : 'hoplimit']: p.ttl,
    ctState: p.ctState,
  };
}

export function describePacket(p: Packet): string {
  const flags = p.l4proto === 'tcp' ? ` ${tcpFlagNames(p.tcpFlags).join(',')}` : '';
  return `${p.l4proto} ${endpoint(p.family, formatIp(p.saddr), p.sport)} -> ${endpoint(p.family, formatIp(p.daddr), p.dport)}${p.iif ? ` iif ${p.iif}` : ''}${flags}`;
}

export function socketToJson(s: SocketEntry): Record<string, unknown> {
  return {
    l4proto: s.l4proto,
    state: s.state,
    local: endpoint(s.family, formatIp(s.local.addr), s.local.port),
    ...(s.remote ? { remote: endpoint(s.family, formatIp(s.remote.addr), s.remote.port) } : {}),
    transparent: s.transparent,
    ...(s.process ? { process: s.process } : {}),
    description: describeSocket(s),
  };
}

export function describeOutcome(o: Outcome, e: Pick<Explanation, 'socket' | 'oif'>): string {
  switch (o.kind) {
    case 'delivered':
      return `DELIVERED to ${e.socket ? describeSocket(e.socket) : '?'}${o.via === 'tproxy' ? ' (assigned by tproxy)' : ' (ordinary socket lookup)'}`;
    case 'answered-by-time-wait':
      return `ANSWERED by the TIME_WAIT socket ${e.socket ? describeSocket(e.socket) : ''}: no application sees it`;
    case 'forwarded':
      return `FORWARDED out of ${e.oif ?? '?'} (not intercepted)`;
    case 'sent':
      return `SENT out of ${e.oif ?? '?'} (not intercepted)`;
    case 'dropped':
      return `DROPPED at ${o.stage}: ${o.by}${o.reply ? `; the kernel answers with ${o.reply}` : ''}`;
  }
}

export function explanationToJson(e: Explanation): Record<string, unknown> {
  return {
    outcome: { ...e.outcome, summary: describeOutcome(e.outcome, e) },
    socket: e.socket ? socketToJson(e.socket) : null,
    oif: e.oif ?? null,
    packet: packetToJson(e.packet),
    trace: e.trace,
    counted: e.counted,
    uncertain: e.uncertain,
  };
}

export function formatExplanation(input: Packet, e: Explanation): string {
  const lines = [`packet: ${describePacket(input)}`, `result: ${describeOutcome(e.outcome, e)}`];
  const p = e.packet;
  // A delivered packet ends at its socket: what the proxy then sends is its own (its sockets'
  // DSCP and TTL, --set-dscp / --set-ttl), not this packet's fields.
  const fields = `mark ${hex(p.mark)}, dscp ${p.dscp}, ${p.family === 4 ? 'ttl' : 'hop limit'} ${p.ttl}`;
  if (e.outcome.kind === 'delivered' || e.outcome.kind === 'answered-by-time-wait') lines.push(`reaches the socket as: ${fields} (it ends there; what the proxy sends carries its own DSCP and TTL)`);
  else if (e.outcome.kind === 'dropped') lines.push(`dropped as: ${fields}`);
  else lines.push(`leaves as: ${fields}`);
  if (e.uncertain) lines.push('note: part of the ruleset is not modelled (marked "not modelled" below): the result may differ');
  lines.push('trace:');
  for (const step of e.trace) {
    const indent = step.stage === 'rule' || step.stage === 'policy' || step.stage === 'socket' ? '    ' : '  ';
    const mark = step.matched === false ? '- ' : step.matched === true ? '+ ' : '';
    lines.push(`${indent}${mark}${step.text}`);
  }
  return `${lines.join('\n')}\n`;
}

const ORIGIN_NAMES: Readonly<Record<Table['origin'], string>> = { nft: 'nftables', iptables: 'iptables-nft', 'iptables-legacy': 'iptables-legacy' };

/** `nftables (inet tproxy_rules, inet fw), iptables-legacy (ip mangle)`: where the rules of a ruleset came from. */
export function describeRuleSources(ruleset: Ruleset): string {
  const by = new Map<string, string[]>();
  for (const t of ruleset.tables) by.set(ORIGIN_NAMES[t.origin], [...(by.get(ORIGIN_NAMES[t.origin]) ?? []), `${t.family} ${t.name}`]);
  return by.size === 0 ? 'nowhere: no rules in force' : [...by].map(([origin, tables]) => `${origin} (${tables.join(', ')})`).join(', ');
}

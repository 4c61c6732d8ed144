/**
 * Evaluating one match against a packet, the way the kernel's expressions do: a payload field of
 * another protocol means the implicit dependency (`meta l4proto tcp` for `tcp dport`) fails, so the
 * match is false whatever the operator; a socket lookup that finds nothing breaks the rule.
 */
import { familyBits, type IpAddress } from '../net/address.js';
import { prefixContains } from '../net/prefix.js';
import { DSCP_NAMES } from '../net/dscp.js';
import { CT_STATE_BITS, L4PROTO_NUMBERS, NFPROTO_NUMBERS, TCP_FLAGS, hex, type Packet } from './packet.js';
import { renderSelector, renderValue } from './render.js';
import type { Match, NamedSet, Selector, Value } from './ruleset.js';
import type { SocketEntry } from './sockets.js';

export interface MatchContext {
  readonly sets: readonly NamedSet[];
  /** The socket the `socket` expression finds (the assigned one, else the lookup). */
  readonly socketFor: (packet: Packet) => SocketEntry | undefined;
  /** `fib daddr type`: local, unicast, broadcast, multicast, unreachable... */
  readonly fibAddressType: (packet: Packet, flags: readonly string[]) => string;
  /** Output interface once routing chose one (output, forward, postrouting). */
  readonly oif?: string;
}

type Field = { kind: 'number'; value: number } | { kind: 'ip'; value: IpAddress } | { kind: 'string'; value: string } | { kind: 'absent'; why: string };

export interface MatchResult {
  readonly matched: boolean;
  readonly reason: string;
}

const L4_BY_NUMBER: Readonly<Record<string, number>> = { tcp: 6, udp: 17 };

function readField(s: Selector, p: Packet, ctx: MatchContext): Field {
  const fam = p.family === 4 ? 'ip' : 'ip6';
  switch (s.kind) {
    case 'meta':
      switch (s.key) {
        case 'l4proto':
          return { kind: 'number', value: L4_BY_NUMBER[p.l4proto]! };
        case 'nfproto':
          return { kind: 'number', value: p.family === 4 ? 2 : 10 };
        case 'protocol':
          return { kind: 'number', value: p.family === 4 ? 0x0800 : 0x86dd };
        case 'iifname':
          return { kind: 'string', value: p.iif ?? '' };
        case 'iif':
          return p.iif === undefined ? { kind: 'absent', why: 'a locally generated packet has no input interface' } : { kind: 'string', value: p.iif };
        case 'oifname':
        case 'oif':
          return ctx.oif === undefined ? (s.key === 'oifname' ? { kind: 'string', value: '' } : { kind: 'absent', why: 'no output interface yet' }) : { kind: 'string', value: ctx.oif };
        case 'mark':
          return { kind: 'number', value: p.mark };
        default:
          return { kind: 'absent', why: `meta ${s.key} is not modelled` };
      }
    case 'payload': {
      const proto = s.protocol;
      if (proto === 'ip' || proto === 'ip6') {
        if (proto !== fam) return { kind: 'absent', why: `not an ${proto === 'ip' ? 'IPv4' : 'IPv6'} packet` };
        switch (s.field) {
          case 'saddr':
            return { kind: 'ip', value: p.saddr };
          case 'daddr':
            return { kind: 'ip', value: p.daddr };
          case 'protocol':
          case 'nexthdr':
            return { kind: 'number', value: L4_BY_NUMBER[p.l4proto]! };
          case 'dscp':
            return { kind: 'number', value: p.dscp };
          case 'ttl':
          case 'hoplimit':
            return { kind: 'number', value: p.ttl };
          default:
            return { kind: 'absent', why: `${proto} ${s.field} is not modelled` };
        }
      }
      if (proto === 'tcp' || proto === 'udp' || proto === 'th') {
        if (proto !== 'th' && proto !== p.l4proto) return { kind: 'absent', why: `not a ${proto.toUpperCase()} packet` };
        if (s.field === 'sport') return { kind: 'number', value: p.sport };
        if (s.field === 'dport') return { kind: 'number', value: p.dport };
        if (s.field === 'flags' && p.l4proto === 'tcp') return { kind: 'number', value: p.tcpFlags };
        return { kind: 'absent', why: `${proto} ${s.field} is not modelled` };
      }
      return { kind: 'absent', why: `${proto} header is not modelled` };
    }
    case 'socket': {
      const sk = ctx.socketFor(p);
      if (!sk) return { kind: 'absent', why: 'no socket found for this packet' };
      if (s.key === 'transparent') return { kind: 'number', value: sk.transparent ? 1 : 0 };
      if (s.key === 'wildcard') {
        if (sk.state === 'time-wait') return { kind: 'absent', why: 'a TIME_WAIT socket has no wildcard flag' };
        return { kind: 'number', value: sk.local.addr.value === 0n ? 1 : 0 };
      }
      if (s.key === 'mark') return { kind: 'number', value: sk.mark ?? 0 };
      return { kind: 'absent', why: `socket ${s.key} is not modelled` };
    }
    case 'ct':
      if (s.key === 'state') return { kind: 'number', value: CT_STATE_BITS[p.ctState] };
      return { kind: 'absent', why: `ct ${s.key} is not modelled` };
    case 'fib':
      if (s.result === 'type' && s.flags.includes('daddr')) return { kind: 'string', value: ctx.fibAddressType(p, s.flags) };
      return { kind: 'absent', why: `fib ${s.flags.join(' . ')} ${s.result} is not modelled` };
  }
}

/** A symbol as the number the selector compares with, or undefined when it is a string symbol. */
function symbolNumber(s: Selector, symbol: string): number | undefined {
  if (/^(0x[0-9a-f]+|\d+)$/i.test(symbol)) return Number(symbol);
  if (s.kind === 'ct' && s.key === 'state') return CT_STATE_BITS[symbol as keyof typeof CT_STATE_BITS];
  if (s.kind === 'payload' && s.field === 'flags') return TCP_FLAGS[symbol];
  if (s.kind === 'payload' && s.field === 'dscp') return DSCP_NAMES[symbol];
  if (s.kind === 'meta' && s.key === 'nfproto') return NFPROTO_NUMBERS[symbol];
  if (s.kind === 'meta' && s.key === 'protocol') return symbol === 'ip' ? 0x0800 : symbol === 'ip6' ? 0x86dd : undefined;
  if ((s.kind === 'meta' && s.key === 'l4proto') || (s.kind === 'payload' && (s.field === 'protocol' || s.field === 'nexthdr'))) return L4PROTO_NUMBERS[symbol];
  return undefined;
}

function valueNumber(s: Selector, v: Value): number | undefined {
  if (v.kind === 'number') return v.value;
  if (v.kind === 'symbol') return symbolNumber(s, v.value);
  if (v.kind === 'flags') return v.values.reduce((acc, f) => acc | (symbolNumber(s, f) ?? 0), 0);
  return undefined;
}

function globMatch(pattern: string, value: string): boolean {
  return pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : pattern === value;
}

/** Does `field` equal `v` (or fall in it, for prefixes, ranges and sets)? */
function contains(s: Selector, field: Field, v: Value, sets: readonly NamedSet[]): boolean {
  switch (v.kind) {
    case 'set':
      return v.elements.some((e) => contains(s, field, e, sets));
    case 'setref': {
      const set = sets.find((x) => x.name === v.name);
      return set ? set.elements.some((e) => contains(s, field, e, sets)) : false;
    }
    case 'prefix':
      return field.kind === 'ip' && prefixContains(v.prefix, field.value);
    case 'range': {
      if (field.kind === 'ip' && v.from.kind === 'prefix' && v.to.kind === 'prefix') {
        return v.from.prefix.family === field.value.family && field.value.value >= v.from.prefix.start && field.value.value <= v.to.prefix.start;
      }
      const [from, to] = [valueNumber(s, v.from), valueNumber(s, v.to)];
      return field.kind === 'number' && from !== undefined && to !== undefined && field.value >= from && field.value <= to;
    }
    default: {
      if (field.kind === 'string') return (v.kind === 'symbol' || v.kind === 'flags') && (v.kind === 'symbol' ? [v.value] : v.values).some((x) => globMatch(x, field.value));
      const n = valueNumber(s, v);
      if (field.kind === 'number' && n !== undefined) return field.value >>> 0 === n >>> 0;
      return false;
    }
  }
}

function show(field: Field, s: Selector): string {
  switch (field.kind) {
    case 'number':
      if (s.kind === 'payload' && s.field === 'flags') return Object.entries(TCP_FLAGS).filter(([, b]) => field.value & b).map(([n]) => n).join(',') || '0';
      if (s.kind === 'ct') return Object.entries(CT_STATE_BITS).find(([, b]) => b === field.value)?.[0] ?? String(field.value);
      if (s.kind === 'meta' && s.key === 'mark') return hex(field.value);
      return String(field.value);
    case 'ip':
      return renderValue({ kind: 'prefix', prefix: { family: field.value.family, start: field.value.value, length: familyBits(field.value.family) } });
    case 'string':
      return field.value === '' ? '""' : field.value;
    case 'absent':
      return field.why;
  }
}

export function evaluateMatch(m: Match, packet: Packet, ctx: MatchContext): MatchResult {
  let field = readField(m.left, packet, ctx);
  const what = renderSelector(m.left);
  if (field.kind === 'absent') return { matched: false, reason: `${what}: ${field.why}` };
  if (m.mask) {
    const mask = valueNumber(m.left, m.mask);
    if (field.kind !== 'number' || mask === undefined) return { matched: false, reason: `${what}: mask not modelled` };
    field = { kind: 'number', value: (field.value & mask) >>> 0 };
  }
  let matched: boolean;
  const isFlagsIn = m.op === 'in' && field.kind === 'number' && m.right.kind !== 'set' && m.right.kind !== 'setref';
  if (isFlagsIn) {
    const bitsWanted = valueNumber(m.left, m.right) ?? 0;
    matched = ((field as { value: number }).value & bitsWanted) !== 0;
  } else if (m.op === '==' || m.op === 'in') {
    matched = contains(m.left, field, m.right, ctx.sets);
  } else if (m.op === '!=') {
    matched = !contains(m.left, field, m.right, ctx.sets);
  } else {
    const n = valueNumber(m.left, m.right);
    if (field.kind !== 'number' || n === undefined) return { matched: false, reason: `${what}: comparison not modelled` };
    const x = field.value;
    matched = m.op === '<' ? x < n : m.op === '>' ? x > n : m.op === '<=' ? x <= n : x >= n;
  }
  const isMark = m.left.kind === 'meta' && m.left.key === 'mark';
  const shown = `${what}${m.mask ? ` & ${renderValue(m.mask, isMark)}` : ''} is ${show(field, m.left)}`;
  return { matched, reason: matched ? shown : `${shown}, wanted ${m.op === '==' || m.op === 'in' ? '' : `${m.op} `}${renderValue(m.right, isMark)}` };
}

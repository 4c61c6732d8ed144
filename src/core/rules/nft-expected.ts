/**
 * The expressions our planned rules must read back as in `nft -j` (libnftables-json(5)), and how a
 * listed rule or set (core/nft-listing.ts) is compared with the plan: what tells "in place" from
 * "drifted". Pure.
 */
import { formatCidr } from './cidr.js';
import { DSCP_NAMES } from '../net/dscp.js';
import { isJsonObject, type NftExpression, type NftJsonRule, type NftJsonSet } from '../nft-listing.js';
import { FULL_MASK, markSetOperation, type MarkBits } from './marks.js';
import type { Match, PlannedRule, PlannedSet, Statement } from './planned.js';

const meta = (key: string): NftExpression => ({ meta: { key } });
const payload = (protocol: string, field: string): NftExpression => ({ payload: { protocol, field } });
const eq = (left: unknown, right: unknown, op = '=='): NftExpression => ({ match: { op, left, right } });
const anySet = (items: readonly unknown[]): unknown => (items.length === 1 ? items[0] : { set: items });

function markValue(mark: MarkBits): unknown {
  const op = markSetOperation(mark);
  if (op.assign !== undefined) return op.assign;
  const anded = op.and !== undefined ? { '&': [meta('mark'), op.and] } : meta('mark');
  return op.or !== undefined ? { '|': [anded, op.or] } : anded;
}

function matchJson(match: Match): NftExpression[] {
  switch (match.type) {
    case 'nfproto':
      return [eq(meta('nfproto'), `ipv${match.family}`)];
    case 'l4proto':
      return [eq(meta('l4proto'), match.transport)];
    case 'iifname':
      return [eq(meta('iifname'), anySet(match.names))];
    case 'dport':
      return [eq(payload(match.transport, 'dport'), anySet(match.ports.map((p) => (p.from === p.to ? p.from : { range: [p.from, p.to] }))))];
    case 'mark':
      return [eq(match.mark.mask >>> 0 === FULL_MASK ? meta('mark') : { '&': [meta('mark'), match.mark.mask >>> 0] }, match.mark.value >>> 0)];
    case 'tcp-not-syn':
      return [eq({ '&': [payload('tcp', 'flags'), ['syn', 'ack']] }, 'syn', '!=')];
    case 'socket-transparent':
      return [eq({ socket: { key: 'transparent' } }, 1), eq({ socket: { key: 'wildcard' } }, 0)];
    case 'address-in-set':
      return [eq(payload(match.family === 4 ? 'ip' : 'ip6', match.direction), `@${match.set}`)];
    case 'fib-daddr-type':
      return [eq({ fib: { result: 'type', flags: ['daddr'] } }, anySet(match.types))];
    case 'skuid':
    case 'skgid':
      return [eq(meta(match.type), anySet(match.ids))];
  }
}

function statementJson(statement: Statement): NftExpression[] {
  const ipProtocol = (family: 4 | 6): string => (family === 4 ? 'ip' : 'ip6');
  switch (statement.type) {
    case 'tproxy':
      return [
        { tproxy: statement.address === undefined ? { family: ipProtocol(statement.family), port: statement.port } : { family: ipProtocol(statement.family), addr: statement.address, port: statement.port } },
        { mangle: { key: meta('mark'), value: markValue(statement.mark) } },
      ];
    case 'mark-set':
      return [{ mangle: { key: meta('mark'), value: markValue(statement.mark) } }];
    case 'dscp-set':
      return [{ mangle: { key: payload(ipProtocol(statement.family), 'dscp'), value: statement.value } }];
    case 'ttl-set':
      return [{ mangle: { key: payload(ipProtocol(statement.family), statement.family === 4 ? 'ttl' : 'hoplimit'), value: statement.value } }];
    case 'counter':
      return [{ counter: null }];
  }
}

function verdictJson(rule: PlannedRule): NftExpression[] {
  switch (rule.verdict) {
    case 'continue':
      return [];
    case 'reject':
      if (rule.transport === 'tcp') return [{ reject: { type: 'tcp reset' } }];
      return [{ reject: { type: rule.family === 6 ? 'icmpv6' : 'icmp', expr: 'port-unreachable' } }];
    default:
      return [{ [rule.verdict]: null }];
  }
}

/** The expressions `nft -j` lists for a planned rule (before normalization). */
export function expectedExpressions(rule: PlannedRule): NftExpression[] {
  return [...rule.matches.flatMap(matchJson), ...rule.statements.flatMap(statementJson), ...verdictJson(rule)];
}

function sortKey(value: unknown): string {
  return JSON.stringify(value);
}

/**
 * Canonical form for comparison: counter values dropped (they change), anonymous set elements
 * sorted (the kernel reorders them), DSCP names turned into numbers.
 */
export function normalizeExpression(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalizeExpression);
  if (value === null || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  if ('counter' in object && Object.keys(object).length === 1) return { counter: null };
  if ('set' in object && Object.keys(object).length === 1 && Array.isArray(object.set)) {
    return { set: (object.set as unknown[]).map(normalizeExpression).sort((a, b) => sortKey(a).localeCompare(sortKey(b))) };
  }
  if ('mangle' in object) {
    const mangle = object.mangle as { key: unknown; value: unknown };
    const field = (mangle.key as { payload?: { field?: string } }).payload?.field;
    if (field === 'dscp' && typeof mangle.value === 'string' && mangle.value in DSCP_NAMES) return { mangle: { key: normalizeExpression(mangle.key), value: DSCP_NAMES[mangle.value] } };
  }
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, normalizeExpression(v)]));
}

export function sameExpressions(live: readonly unknown[], wanted: readonly NftExpression[]): boolean {
  return JSON.stringify(normalizeExpression(live)) === JSON.stringify(normalizeExpression(wanted));
}

/** Set elements as `addr/len` strings, sorted: nft lists a /32 (/128) as a bare address. */
export function setElements(set: Pick<NftJsonSet, 'elem' | 'type'>): string[] {
  const full = set.type === 'ipv6_addr' ? 128 : 32;
  return (set.elem ?? [])
    .map((e) => {
      if (typeof e === 'string') return `${e}/${full}`;
      const prefix = (e as { prefix?: { addr: string; len: number } }).prefix;
      return prefix ? `${prefix.addr}/${prefix.len}` : JSON.stringify(e);
    })
    .sort();
}

export function plannedSetElements(set: PlannedSet): string[] {
  return set.elements.map(formatCidr).sort();
}

/** Packet and byte counts of a rule's counter, if it has one. */
export function ruleCounter(rule: Pick<NftJsonRule, 'expr'>): { packets: number; bytes: number } | undefined {
  for (const expr of rule.expr) {
    const counter = isJsonObject(expr) ? (expr.counter as { packets?: number; bytes?: number } | undefined) : undefined;
    if (counter && typeof counter.packets === 'number') return { packets: counter.packets, bytes: counter.bytes ?? 0 };
  }
  return undefined;
}

/**
 * Policy routing as fib_rules.c and fib lookups do it: `ip rule` entries in priority order
 * (selector: from, to, iif, oif, fwmark/mask, not; action: lookup, blackhole, unreachable,
 * prohibit, goto), then the longest-prefix route of the table (ties: lowest metric).
 * Read from `ip -j rule` and `ip -j route show table all`.
 */
import type { Family } from '../net/constants.js';
import { TproxyError } from '../errors.js';
import type { IpAddress } from '../net/address.js';
import { formatKernelPrefix, parseKernelPrefix, prefixContains, type Prefix } from '../net/prefix.js';
import { hex } from './packet.js';

export type RouteType = 'unicast' | 'local' | 'broadcast' | 'multicast' | 'anycast' | 'blackhole' | 'unreachable' | 'prohibit' | 'throw' | 'nat';

export interface Route {
  readonly family: Family;
  readonly table: string;
  readonly type: RouteType;
  readonly dst: Prefix;
  readonly dev?: string;
  readonly gateway?: string;
  readonly metric: number;
}

export type RuleAction = 'lookup' | 'blackhole' | 'unreachable' | 'prohibit' | 'goto' | 'nop';

export interface IpRule {
  readonly family: Family;
  readonly priority: number;
  readonly not: boolean;
  readonly from?: Prefix;
  readonly to?: Prefix;
  readonly iif?: string;
  readonly oif?: string;
  readonly fwmark?: number;
  readonly fwmask?: number;
  readonly action: RuleAction;
  readonly table?: string;
  readonly gotoPriority?: number;
  readonly suppressPrefixLength?: number;
}

export interface Routing {
  readonly rules: readonly IpRule[];
  readonly routes: readonly Route[];
}

const TABLE_NAMES: Readonly<Record<string, string>> = { '255': 'local', '254': 'main', '253': 'default', '0': 'unspec' };

export function tableName(value: unknown): string {
  const s = typeof value === 'string' || typeof value === 'number' ? String(value) : 'main';
  return TABLE_NAMES[s] ?? s;
}

function num(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value !== '') return Number(value);
  return undefined;
}

function parseJsonArray(text: unknown, what: string): Record<string, unknown>[] {
  if (typeof text !== 'string') return Array.isArray(text) ? (text as Record<string, unknown>[]) : [];
  if (text.trim() === '') return [];
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) ? (parsed as Record<string, unknown>[]) : [];
  } catch (error) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `${what} could not be parsed as JSON: ${(error as Error).message}`, {}, { cause: error });
  }
}

function selectorPrefix(addr: unknown, len: unknown, family: Family): Prefix | undefined {
  if (typeof addr !== 'string' || addr === 'all') return undefined;
  return parseKernelPrefix(typeof len === 'number' || typeof len === 'string' ? `${addr}/${len}` : addr, family);
}

/** `ip -j [-6] rule` output. */
export function parseIpRules(json: unknown, family: Family): IpRule[] {
  return parseJsonArray(json, `ip -j -${family} rule`).map((r) => {
    const action = (typeof r.action === 'string' ? r.action : r.table !== undefined ? 'lookup' : 'nop');
    const fwmark = num(r.fwmark);
    const from = selectorPrefix(r.src, r.srclen, family);
    const to = selectorPrefix(r.dst, r.dstlen, family);
    return {
      family,
      priority: num(r.priority) ?? 0,
      not: 'not' in r,
      ...(from ? { from } : {}),
      ...(to ? { to } : {}),
      ...(typeof r.iif === 'string' ? { iif: r.iif } : {}),
      ...(typeof r.oif === 'string' ? { oif: r.oif } : {}),
      ...(fwmark !== undefined ? { fwmark: fwmark >>> 0, fwmask: (num(r.fwmask) ?? 0xffffffff) >>> 0 } : {}),
      action: (['lookup', 'blackhole', 'unreachable', 'prohibit', 'goto', 'nop'].includes(action) ? action : 'nop') as RuleAction,
      ...(r.table !== undefined ? { table: tableName(r.table) } : {}),
      ...(num(r.goto) !== undefined ? { gotoPriority: num(r.goto)! } : {}),
      ...(num(r.suppress_prefixlen) !== undefined ? { suppressPrefixLength: num(r.suppress_prefixlen)! } : {}),
    };
  }).sort((a, b) => a.priority - b.priority);
}

/** `ip -j [-6] route show table all` output. */
export function parseRoutes(json: unknown, family: Family): Route[] {
  const routes: Route[] = [];
  for (const r of parseJsonArray(json, `ip -j -${family} route show table all`)) {
    if (typeof r.dst !== 'string') continue;
    const dstText = r.dst;
    if (dstText !== 'default' && !dstText.includes(family === 4 ? '.' : ':')) continue;
    const type = (typeof r.type === 'string' ? r.type : 'unicast') as RouteType;
    routes.push({
      family,
      table: tableName(r.table),
      type,
      dst: parseKernelPrefix(dstText, family),
      ...(typeof r.dev === 'string' ? { dev: r.dev } : {}),
      ...(typeof r.gateway === 'string' ? { gateway: r.gateway } : {}),
      metric: num(r.metric) ?? 0,
    });
  }
  return routes;
}

export interface FlowKey {
  readonly family: Family;
  readonly saddr: IpAddress;
  readonly daddr: IpAddress;
  /** Incoming interface; `lo` for locally generated packets (as the kernel's flowi has it). */
  readonly iif: string;
  readonly oif?: string;
  readonly mark: number;
}

export type RouteDecision =
  | { readonly kind: 'local'; readonly route: Route; readonly rule: IpRule }
  | { readonly kind: 'unicast'; readonly route: Route; readonly rule: IpRule }
  | { readonly kind: 'blackhole' | 'unreachable' | 'prohibit'; readonly route?: Route; readonly rule: IpRule }
  | { readonly kind: 'none' };

export interface RuleTried {
  readonly rule: IpRule;
  readonly matched: boolean;
  readonly result: string;
}

export function describeIpRule(r: IpRule): string {
  const parts = [`${r.priority}:`];
  if (r.not) parts.push('not');
  parts.push(`from ${r.from ? formatKernelPrefix(r.from) : 'all'}`);
  if (r.to) parts.push(`to ${formatKernelPrefix(r.to)}`);
  if (r.iif) parts.push(`iif ${r.iif}`);
  if (r.oif) parts.push(`oif ${r.oif}`);
  if (r.fwmark !== undefined) parts.push(`fwmark ${hex(r.fwmark)}${r.fwmask !== 0xffffffff ? `/${hex(r.fwmask ?? 0xffffffff)}` : ''}`);
  if (r.action === 'lookup') parts.push(`lookup ${r.table ?? 'main'}`);
  else if (r.action === 'goto') parts.push(`goto ${r.gotoPriority ?? '?'}`);
  else parts.push(r.action);
  if (r.suppressPrefixLength !== undefined) parts.push(`suppress_prefixlength ${r.suppressPrefixLength}`);
  return parts.join(' ');
}

export function describeRoute(r: Route): string {
  const type = r.type === 'unicast' ? '' : `${r.type} `;
  return `${type}${r.dst.length === 0 ? 'default' : formatKernelPrefix(r.dst)}${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''} table ${r.table}`;
}

function ruleSelects(rule: IpRule, flow: FlowKey): boolean {
  let ok = true;
  if (rule.from && !prefixContains(rule.from, flow.saddr)) ok = false;
  if (rule.to && !prefixContains(rule.to, flow.daddr)) ok = false;
  if (rule.iif !== undefined && rule.iif !== flow.iif) ok = false;
  if (rule.oif !== undefined && rule.oif !== flow.oif) ok = false;
  if (rule.fwmark !== undefined && ((flow.mark ^ rule.fwmark) & (rule.fwmask ?? 0xffffffff)) >>> 0 !== 0) ok = false;
  return rule.not ? !ok : ok;
}

/** The longest-prefix route of `table` for `daddr` (lowest metric among equals). */
export function lookupTable(routes: readonly Route[], table: string, family: Family, daddr: IpAddress): Route | undefined {
  let best: Route | undefined;
  for (const r of routes) {
    if (r.family !== family || r.table !== table || !prefixContains(r.dst, daddr)) continue;
    if (!best || r.dst.length > best.dst.length || (r.dst.length === best.dst.length && r.metric < best.metric)) best = r;
  }
  return best;
}

/** fib_rules_lookup + fib_table_lookup: the decision and every rule tried on the way. */
export function routeLookup(routing: Routing, flow: FlowKey): { decision: RouteDecision; tried: RuleTried[] } {
  const tried: RuleTried[] = [];
  const rules = routing.rules.filter((r) => r.family === flow.family);
  let gotoTarget: number | undefined;
  for (const rule of rules) {
    if (gotoTarget !== undefined && rule.priority < gotoTarget) continue;
    gotoTarget = undefined;
    if (!ruleSelects(rule, flow)) {
      tried.push({ rule, matched: false, result: 'does not select this packet' });
      continue;
    }
    switch (rule.action) {
      case 'blackhole':
      case 'unreachable':
      case 'prohibit':
        tried.push({ rule, matched: true, result: rule.action });
        return { decision: { kind: rule.action, rule }, tried };
      case 'goto':
        tried.push({ rule, matched: true, result: `goto ${rule.gotoPriority ?? '?'}` });
        gotoTarget = rule.gotoPriority;
        continue;
      case 'nop':
        tried.push({ rule, matched: true, result: 'nop' });
        continue;
      default:
        break;
    }
    const table = rule.table ?? 'main';
    const route = lookupTable(routing.routes, table, flow.family, flow.daddr);
    if (!route) {
      tried.push({ rule, matched: true, result: `table ${table} has no route to the destination` });
      continue;
    }
    if (rule.suppressPrefixLength !== undefined && route.dst.length <= rule.suppressPrefixLength) {
      tried.push({ rule, matched: true, result: `${describeRoute(route)} suppressed (prefix length <= ${rule.suppressPrefixLength})` });
      continue;
    }
    if (route.type === 'throw') {
      tried.push({ rule, matched: true, result: `${describeRoute(route)}: throw, next rule` });
      continue;
    }
    tried.push({ rule, matched: true, result: describeRoute(route) });
    switch (route.type) {
      case 'local':
      case 'broadcast':
      case 'anycast':
      case 'multicast':
        return { decision: { kind: 'local', route, rule }, tried };
      case 'blackhole':
      case 'unreachable':
      case 'prohibit':
        return { decision: { kind: route.type, route, rule }, tried };
      default:
        return { decision: { kind: 'unicast', route, rule }, tried };
    }
  }
  return { decision: { kind: 'none' }, tried };
}

/**
 * `ip -N -j rule show` / `ip -N -j route show table all` output (numeric: table ids and route types
 * as numbers, whatever /etc/iproute2/rt_tables says), and which entries are ours. Pure.
 */
import type { Family } from '../net/constants.js';
import { FULL_MASK, shortMark } from './marks.js';
import type { PolicyRoute } from './planned.js';

export interface IpRuleJson {
  readonly priority?: number;
  readonly not?: null;
  readonly src?: string;
  readonly srclen?: number;
  readonly dst?: string;
  readonly dstlen?: number;
  readonly iif?: string;
  readonly oif?: string;
  readonly fwmark?: string;
  readonly fwmask?: string;
  readonly table?: string;
  readonly action?: string;
}

export interface IpRouteJson {
  readonly type?: string;
  readonly dst?: string;
  readonly dev?: string;
  readonly gateway?: string;
  /** Absent for the main table. */
  readonly table?: string;
}

/** Live policy routing of both families. */
export interface PolicyRoutingState {
  readonly rules: Readonly<Record<Family, readonly IpRuleJson[]>>;
  readonly routes: Readonly<Record<Family, readonly IpRouteJson[]>>;
}

const RTN_LOCAL = '2';
const MAIN_TABLE = '254';

export function ruleMark(rule: IpRuleJson): { value: number; mask: number } | undefined {
  if (rule.fwmark === undefined) return undefined;
  return { value: Number(rule.fwmark) >>> 0, mask: rule.fwmask === undefined ? FULL_MASK : Number(rule.fwmask) >>> 0 };
}

export function routeTable(route: IpRouteJson): string {
  return route.table ?? MAIN_TABLE;
}

/** Exactly our rule: same priority and table, and the same selector (mark and mask, or source prefix and iif lo), nothing else. */
export function isPolicyRule(rule: IpRuleJson, route: PolicyRoute): boolean {
  const mark = ruleMark(rule);
  const planned = route.rule;
  const common = rule.priority === planned.priority && rule.table === `${planned.table}` && !('not' in rule) && rule.dst === undefined && rule.oif === undefined;
  if (!common) return false;
  if ('fwmark' in planned) {
    return mark !== undefined && mark.value === planned.fwmark >>> 0 && mark.mask === planned.fwmarkMask >>> 0 && (rule.src ?? 'all') === 'all' && rule.iif === undefined;
  }
  const [address, length] = planned.from.split('/');
  const full = address!.includes(':') ? 128 : 32;
  return mark === undefined && rule.iif === planned.iif && rule.src === address && (rule.srclen ?? full) === Number(length ?? full);
}

/** Exactly our route: `local default dev lo` in our table. */
export function isPolicyRoute(route: IpRouteJson, planned: PolicyRoute): boolean {
  return routeTable(route) === `${planned.route.table}` && (route.type === RTN_LOCAL || route.type === 'local') && route.dst === 'default' && route.dev === 'lo';
}

/** `ip -4 rule 9000: from all fwmark 0x1/0x1 lookup 100`, for messages. */
export function describeIpRule(family: Family, rule: IpRuleJson): string {
  const mark = ruleMark(rule);
  const parts = [
    `${rule.priority ?? '?'}:`,
    ...('not' in rule ? ['not'] : []),
    `from ${rule.src ?? 'all'}${rule.srclen !== undefined ? `/${rule.srclen}` : ''}`,
    ...(rule.dst !== undefined ? [`to ${rule.dst}${rule.dstlen !== undefined ? `/${rule.dstlen}` : ''}`] : []),
    ...(mark ? [`fwmark ${shortMark(mark)}`] : []),
    ...(rule.iif !== undefined ? [`iif ${rule.iif}`] : []),
    ...(rule.oif !== undefined ? [`oif ${rule.oif}`] : []),
    rule.table !== undefined ? `lookup ${rule.table}` : (rule.action ?? ''),
  ];
  return `ip -${family} rule ${parts.filter(Boolean).join(' ')}`;
}

const ROUTE_TYPES: Readonly<Record<string, string>> = { '1': 'unicast', '2': 'local', '3': 'broadcast', '4': 'anycast', '5': 'multicast', '6': 'blackhole', '7': 'unreachable', '8': 'prohibit', '9': 'throw' };

export function describeIpRoute(family: Family, route: IpRouteJson): string {
  const type = ROUTE_TYPES[route.type ?? '1'] ?? route.type ?? 'unicast';
  return `ip -${family} route ${type} ${route.dst ?? '?'}${route.gateway ? ` via ${route.gateway}` : ''}${route.dev ? ` dev ${route.dev}` : ''} table ${routeTable(route)}`;
}

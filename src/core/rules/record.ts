/**
 * The record of what an apply put on a host, kept in the kernel next to the rules (the nft table's
 * comment; the iptables jump rule's comment): which policy routing is ours, and which `tproxy run`
 * process owns the rules. Cleanup and the next start read it, so they remove exactly what an earlier
 * run added even when its options differed, and notice state left by a process that died. Pure.
 *
 *   tproxy v1 families=4,6 fwmark=0x1/0x1 table=100 priority=9000 loopback=4,6 owner=1234
 *
 * `loopback`: the families given the mmproxy rule `from 127.0.0.0/8 iif lo` (`::1/128`) to the same
 * table and priority (absent in records of earlier versions: none).
 */
import type { Family } from '../net/constants.js';
import { loopbackPrefix } from './policy-routing.js';
import type { PolicyRoute } from './planned.js';

export interface RulesRecord {
  readonly families: readonly Family[];
  readonly fwmark: number;
  readonly fwmarkMask: number;
  readonly routeTable: number;
  readonly rulePriority: number;
  /** Families with the mmproxy loopback-replies rule (absent: none). */
  readonly loopback?: readonly Family[];
  /** pid of the `tproxy run` that applied the rules and removes them when it stops. */
  readonly owner?: number;
}

const PREFIX = 'tproxy v1 ';

export function encodeRecord(record: RulesRecord): string {
  const fields = [
    `families=${record.families.join(',')}`,
    `fwmark=0x${record.fwmark.toString(16)}/0x${record.fwmarkMask.toString(16)}`,
    `table=${record.routeTable}`,
    `priority=${record.rulePriority}`,
    ...(record.loopback && record.loopback.length > 0 ? [`loopback=${record.loopback.join(',')}`] : []),
    ...(record.owner !== undefined ? [`owner=${record.owner}`] : []),
  ];
  return `${PREFIX}${fields.join(' ')}`;
}

/** The record in a comment, or undefined when the comment is not one of ours. */
export function decodeRecord(comment: string | undefined): RulesRecord | undefined {
  if (!comment?.startsWith(PREFIX)) return undefined;
  const fields = new Map(comment.slice(PREFIX.length).split(' ').map((f) => f.split('=') as [string, string | undefined]));
  const families = (fields.get('families') ?? '').split(',').filter((f) => f === '4' || f === '6').map((f) => Number(f) as Family);
  const mark = /^(0x[0-9a-f]+)\/(0x[0-9a-f]+)$/.exec(fields.get('fwmark') ?? '');
  const table = Number(fields.get('table'));
  const priority = Number(fields.get('priority'));
  if (families.length === 0 || !mark || !Number.isInteger(table) || !Number.isInteger(priority)) return undefined;
  const owner = fields.has('owner') ? Number(fields.get('owner')) : undefined;
  const loopback = (fields.get('loopback') ?? '').split(',').filter((f) => f === '4' || f === '6').map((f) => Number(f) as Family);
  return {
    families,
    fwmark: Number(mark[1]),
    fwmarkMask: Number(mark[2]),
    routeTable: table,
    rulePriority: priority,
    ...(loopback.length > 0 ? { loopback } : {}),
    ...(owner !== undefined && Number.isInteger(owner) ? { owner } : {}),
  };
}

/** The route every rule of ours looks up: `local default dev lo` in our table. */
export function localRoute(family: Family, table: number): PolicyRoute['route'] {
  return { type: 'local', destination: family === 4 ? '0.0.0.0/0' : '::/0', device: 'lo', table };
}

/** The policy routing of these fwmark and loopback families (what a plan has, what a record says is ours). */
export function policyRoutesOf(record: RulesRecord): PolicyRoute[] {
  return [
    ...record.families.map((family): PolicyRoute => ({ family, rule: { fwmark: record.fwmark, fwmarkMask: record.fwmarkMask, table: record.routeTable, priority: record.rulePriority }, route: localRoute(family, record.routeTable) })),
    ...(record.loopback ?? []).map((family): PolicyRoute => ({ family, rule: { from: loopbackPrefix(family), iif: 'lo', table: record.routeTable, priority: record.rulePriority }, route: localRoute(family, record.routeTable) })),
  ];
}

/** The policy routing a record says is ours. */
export function recordedPolicyRoutes(record: RulesRecord): PolicyRoute[] {
  return policyRoutesOf(record);
}

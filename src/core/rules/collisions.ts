/**
 * Before applying: is the fwmark, the route table or the rule priority we would use already used on
 * this host by someone else? (WireGuard, Tailscale, mwan3, kube-proxy and other proxies all use
 * marks and tables.) Pure: host state in, conflicts (refuse) and warnings (report) out.
 *
 * Policy:
 * - an ip rule at our priority, an ip rule that looks up our table, or a route in our table that is
 *   not our local default route: conflict;
 * - an ip rule or nft/iptables rule matching a mark that can agree with ours on a shared bit: conflict
 *   (their packets would be routed to the proxy, or ours to them);
 * - a rule that sets any of our mark bits to a constant: conflict (it overwrites ours);
 * - a rule that copies a whole mark from elsewhere (`meta mark set ct mark`) or an xt target whose
 *   arguments nft cannot show: warning, since the bits it writes depend on traffic;
 * - entries that are ours (exactly our rule and route, now or as recorded by an earlier apply): fine.
 */
import type { Family } from '../net/constants.js';
import { upstreamMarks } from './config.js';
import { describeIpRoute, describeIpRule, isPolicyRoute, isPolicyRule, routeTable, ruleMark, type PolicyRoutingState } from './ip-json.js';
import type { MarkUsage } from './mark-usage.js';
import { freeMarkBit, hex, marksCollide, sharedBits, shortMark, type MarkBits } from './marks.js';
import type { PolicyRoute, RulesPlan } from './planned.js';

export interface CollisionReport {
  /** One line per conflict, each saying what uses it and what to choose instead. */
  readonly conflicts: readonly string[];
  readonly warnings: readonly string[];
}

export interface HostUsage {
  readonly routing: PolicyRoutingState;
  /** Mark usage by rules outside our own table or chains. */
  readonly marks: readonly MarkUsage[];
}

function isOurs(family: Family, own: readonly PolicyRoute[], test: (route: PolicyRoute) => boolean): boolean {
  return own.some((route) => route.family === family && test(route));
}

function nextFree(start: number, used: ReadonlySet<number>, limit: number): number | undefined {
  for (let n = start + 1; n <= limit; n++) if (!used.has(n)) return n;
  return undefined;
}

/**
 * `own`: policy routes that are ours (the plan's, and those an earlier apply recorded).
 */
export function findCollisions(plan: RulesPlan, host: HostUsage, own: readonly PolicyRoute[]): CollisionReport {
  const conflicts: string[] = [];
  const warnings: string[] = [];
  const { fwmark, fwmarkMask, routeTable: table, rulePriority: priority } = plan.config;
  const ourMark: MarkBits = { value: fwmark, mask: fwmarkMask };
  const markUsers: string[] = [];
  const usedBits: number[] = [...upstreamMarks(plan.config), ...(plan.config.mangle.mark ? [plan.config.mangle.mark.mask] : [])];
  const usedPriorities = new Set<number>();
  const usedTables = new Set<number>([253, 254, 255]);

  for (const family of plan.config.families) {
    const rules = host.routing.rules[family];
    for (const rule of rules) {
      if (rule.priority !== undefined) usedPriorities.add(rule.priority);
      if (rule.table !== undefined && /^\d+$/.test(rule.table)) usedTables.add(Number(rule.table));
      if (isOurs(family, own, (r) => isPolicyRule(rule, r))) continue;
      const what = describeIpRule(family, rule);
      if (rule.priority === priority) conflicts.push(`rule priority ${priority} is already used by \`${what}\``);
      else if (rule.table === `${table}`) conflicts.push(`route table ${table} is already used by \`${what}\``);
      const mark = ruleMark(rule);
      if (mark) usedBits.push(mark.mask);
      if (mark && !('not' in rule) && marksCollide(mark, ourMark)) markUsers.push(`\`${what}\``);
    }
    for (const route of host.routing.routes[family]) {
      if (/^\d+$/.test(routeTable(route))) usedTables.add(Number(routeTable(route)));
      if (routeTable(route) !== `${table}` || isOurs(family, own, (r) => isPolicyRoute(route, r))) continue;
      conflicts.push(`route table ${table} already has \`${describeIpRoute(family, route)}\``);
    }
  }

  for (const usage of host.marks) {
    const bits = sharedBits(usage.mark.mask, fwmarkMask);
    if (usage.kind === 'match' || usage.kind === 'set') usedBits.push(usage.mark.mask);
    if (usage.kind === 'match' && marksCollide(usage.mark, ourMark)) markUsers.push(`${usage.where} (matches mark ${shortMark(usage.mark)})`);
    else if (usage.kind === 'set' && bits !== 0) markUsers.push(`${usage.where} (sets mark bits ${hex(usage.mark.mask)})`);
    else if (usage.kind === 'copy' && bits !== 0) warnings.push(`${usage.where} sets the packet mark from a value only known at run time; if it runs after our prerouting chain it can overwrite fwmark ${shortMark(ourMark)}`);
    else if (usage.kind === 'opaque') warnings.push(`${usage.where} uses packet marks in a way nft cannot show; check it does not use fwmark ${shortMark(ourMark)}`);
  }

  if (markUsers.length > 0) {
    const bit = freeMarkBit(usedBits);
    conflicts.push(
      `fwmark ${shortMark(ourMark)} is already used: ${markUsers.join('; ')}. Choose mark bits nobody else uses${bit !== undefined ? `, e.g. --fwmark ${hex(bit)} --fwmark-mask ${hex(bit)}` : ''}`,
    );
  }
  const prioritySuggestion = nextFree(priority, usedPriorities, 32765);
  const tableSuggestion = nextFree(table, usedTables, 0xfffffff0);
  return {
    conflicts: conflicts.map((c) =>
      c.startsWith('rule priority') && prioritySuggestion !== undefined
        ? `${c}: choose another --rule-priority, e.g. ${prioritySuggestion}`
        : c.startsWith('route table') && tableSuggestion !== undefined
          ? `${c}: choose another --route-table, e.g. ${tableSuggestion}`
          : c,
    ),
    warnings,
  };
}

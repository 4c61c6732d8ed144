/** The `ip` commands of the policy routing that makes marked packets local. Pure. */
import { hex } from './marks.js';
import type { PolicyRoute } from './planned.js';

/** argv (after `ip`) that adds / deletes the fwmark rule of one family. */
export function ipRuleArgs(route: PolicyRoute, verb: 'add' | 'del'): string[] {
  return [`-${route.family}`, 'rule', verb, 'fwmark', `${hex(route.rule.fwmark)}/${hex(route.rule.fwmarkMask)}`, 'lookup', `${route.rule.table}`, 'priority', `${route.rule.priority}`];
}

/** argv (after `ip`) that adds / deletes the local default route of one family. */
export function ipRouteArgs(route: PolicyRoute, verb: 'add' | 'del'): string[] {
  return [`-${route.family}`, 'route', verb, 'local', route.route.destination, 'dev', route.route.device, 'table', `${route.route.table}`];
}

/** The commands `apply` runs on a host without any of them (shown by `tproxy rules plan`). */
export function ipApplyCommands(routes: readonly PolicyRoute[]): string[][] {
  return routes.flatMap((r) => [['ip', ...ipRouteArgs(r, 'add')], ['ip', ...ipRuleArgs(r, 'add')]]);
}

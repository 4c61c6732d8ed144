/** The `ip` commands of the policy routing that makes marked packets local. Pure. */
import { hex } from './marks.js';
import type { PolicyRoute } from './planned.js';

/** The loopback prefix of a family: where a backend on this host's loopback answers from. */
export function loopbackPrefix(family: 4 | 6): string {
  return family === 4 ? '127.0.0.0/8' : '::1/128';
}

/** argv (after `ip`) that adds / deletes the policy rule of one family (fwmark, or loopback replies). */
export function ipRuleArgs(route: PolicyRoute, verb: 'add' | 'del'): string[] {
  const r = route.rule;
  const selector = 'fwmark' in r ? ['fwmark', `${hex(r.fwmark)}/${hex(r.fwmarkMask)}`] : ['from', r.from, 'iif', r.iif];
  return [`-${route.family}`, 'rule', verb, ...selector, 'lookup', `${r.table}`, 'priority', `${r.priority}`];
}

/** argv (after `ip`) that adds / deletes the local default route of one family. */
export function ipRouteArgs(route: PolicyRoute, verb: 'add' | 'del'): string[] {
  return [`-${route.family}`, 'route', verb, 'local', route.route.destination, 'dev', route.route.device, 'table', `${route.route.table}`];
}

/** The routes of `routes`, one per family and table (several rules may look up one table). */
export function distinctRoutes(routes: readonly PolicyRoute[]): PolicyRoute[] {
  const seen = new Set<string>();
  return routes.filter((r) => {
    const key = `${r.family}/${r.route.table}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The commands `apply` runs on a host without any of them (shown by `tproxy rules plan`). */
export function ipApplyCommands(routes: readonly PolicyRoute[]): string[][] {
  return [...distinctRoutes(routes).map((r) => ['ip', ...ipRouteArgs(r, 'add')]), ...routes.map((r) => ['ip', ...ipRuleArgs(r, 'add')])];
}

/**
 * Driving the `ip` binary for policy routing: the fwmark rule and the local route table.
 * State is read back with `ip -j` so applying twice never duplicates a rule.
 */
import type { CommandRunner } from '../sys/exec.js';
import { ipRouteArgs, ipRuleArgs, type PolicyRoute } from '../core/rules/plan.js';

interface IpJsonRule {
  readonly priority?: number;
  readonly fwmark?: string;
  readonly fwmask?: string;
  readonly table?: string;
}

interface IpJsonRoute {
  readonly type?: string;
  readonly dst?: string;
  readonly dev?: string;
}

export class IpRoute {
  constructor(private readonly runner: CommandRunner) {}

  async rules(family: 4 | 6): Promise<IpJsonRule[]> {
    const result = await this.runner.run(['ip', '-j', `-${family}`, 'rule', 'show']);
    return JSON.parse(result.stdout || '[]') as IpJsonRule[];
  }

  async routes(family: 4 | 6, table: number): Promise<IpJsonRoute[]> {
    const result = await this.runner.run(['ip', '-j', `-${family}`, 'route', 'show', 'table', `${table}`], { check: false });
    if (result.exitCode !== 0) return [];
    return JSON.parse(result.stdout || '[]') as IpJsonRoute[];
  }

  /** Is exactly our rule present (same priority, mark, mask, table)? */
  async hasRule(route: PolicyRoute): Promise<boolean> {
    const rules = await this.rules(route.family);
    return rules.some((r) => matchesRule(r, route));
  }

  async hasRoute(route: PolicyRoute): Promise<boolean> {
    const routes = await this.routes(route.family, route.route.table);
    return routes.some((r) => r.type === 'local' && (r.dst === 'default' || r.dst === route.route.destination) && r.dev === 'lo');
  }

  /** Add rule and route unless present. */
  async ensure(route: PolicyRoute): Promise<void> {
    await this.runner.run(['ip', ...ipRouteArgs(route, 'replace')]);
    if (!(await this.hasRule(route))) await this.runner.run(['ip', ...ipRuleArgs(route, 'add')]);
  }

  /** Remove every copy of our rule, then the route; missing pieces are not errors. */
  async remove(route: PolicyRoute): Promise<{ rules: number; routes: number }> {
    let rules = 0;
    for (let i = 0; i < 16 && (await this.hasRule(route)); i++) {
      await this.runner.run(['ip', ...ipRuleArgs(route, 'del')]);
      rules++;
    }
    let routes = 0;
    if (await this.hasRoute(route)) {
      await this.runner.run(['ip', ...ipRouteArgs(route, 'del')]);
      routes++;
    }
    return { rules, routes };
  }
}

function matchesRule(rule: IpJsonRule, route: PolicyRoute): boolean {
  if (rule.priority !== route.rule.priority) return false;
  if (rule.table !== `${route.rule.table}`) return false;
  if (rule.fwmark === undefined || Number(rule.fwmark) !== route.rule.fwmark) return false;
  const mask = rule.fwmask === undefined ? 0xffffffff : Number(rule.fwmask);
  return mask === route.rule.fwmarkMask;
}

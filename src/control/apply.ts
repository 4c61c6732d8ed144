/**
 * Applying and removing a rules plan: nft table (checked, then one transaction) and policy routing.
 * If policy routing fails after the table went in, the table is removed again: nothing is left
 * half-applied.
 */
import { renderNftScript, type RulesPlan } from '../core/rules/plan.js';
import type { CommandRunner } from '../sys/exec.js';
import { IpRoute } from './iproute.js';
import { Nft, type NftTableState } from './nft.js';

export interface AppliedState {
  readonly table: NftTableState | undefined;
  readonly policyRoutes: readonly { family: 4 | 6; rule: boolean; route: boolean }[];
}

export class RulesController {
  readonly nft: Nft;
  readonly ip: IpRoute;

  constructor(runner: CommandRunner) {
    this.nft = new Nft(runner);
    this.ip = new IpRoute(runner);
  }

  async apply(plan: RulesPlan): Promise<void> {
    const script = renderNftScript(plan);
    await this.nft.check(script);
    await this.nft.apply(script);
    try {
      for (const route of plan.policyRoutes) await this.ip.ensure(route);
    } catch (error) {
      await this.remove(plan).catch(() => undefined);
      throw error;
    }
  }

  async remove(plan: RulesPlan): Promise<{ table: boolean; rules: number; routes: number }> {
    const table = await this.nft.deleteTable(plan.table.family, plan.table.name);
    let rules = 0;
    let routes = 0;
    for (const route of plan.policyRoutes) {
      const removed = await this.ip.remove(route);
      rules += removed.rules;
      routes += removed.routes;
    }
    return { table, rules, routes };
  }

  async status(plan: RulesPlan): Promise<AppliedState> {
    const table = await this.nft.readTable(plan.table.family, plan.table.name);
    const policyRoutes = [];
    for (const route of plan.policyRoutes) {
      policyRoutes.push({ family: route.family, rule: await this.ip.hasRule(route), route: await this.ip.hasRoute(route) });
    }
    return { table, policyRoutes };
  }
}

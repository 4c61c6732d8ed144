/**
 * The iptables backend (hosts without nft): our chains in the mangle table of iptables and
 * ip6tables, each family changed by one `iptables-restore --noflush` transaction.
 */
import { isTproxyError } from '../core/errors.js';
import type { Family } from '../core/net/constants.js';
import { liveIptables, type LiveIptables } from '../core/rules/iptables-state.js';
import { parseIptablesDump } from '../core/iptables-dump.js';
import type { MarkUsage } from '../core/rules/mark-usage.js';
import { markUsageFromIptables } from '../core/rules/mark-usage-iptables.js';
import { EMPTY_IPTABLES_STATE, plannedIptablesState, renderIptablesTransition, validateForIptables, type IptablesState } from '../core/rules/render-iptables.js';
import type { RulesPlan } from '../core/rules/planned.js';
import { iptablesStatus, type StatusReport } from '../core/rules/status.js';
import type { CommandRunner } from '../sys/exec.js';
import type { BackendCommand, OwnedRules, RulesBackend } from './backend.js';
import { Iptables, iptablesBinary, type IptablesFlavour } from './iptables.js';

export interface IptablesOwned extends OwnedRules {
  readonly live: Readonly<Record<Family, LiveIptables | undefined>>;
}

const FAMILIES: readonly Family[] = [4, 6];

function isEmpty(state: IptablesState): boolean {
  return state.jumps.length === 0 && state.chains.length === 0;
}

export class IptablesBackend implements RulesBackend<IptablesOwned> {
  readonly name;
  private readonly tools: Readonly<Record<Family, Iptables>>;

  constructor(
    runner: CommandRunner,
    readonly flavour: IptablesFlavour,
  ) {
    this.name = flavour === 'system' ? ('iptables' as const) : (`iptables-${flavour}` as const);
    this.tools = { 4: new Iptables(runner, flavour, 4), 6: new Iptables(runner, flavour, 6) };
  }

  render(plan: RulesPlan): BackendCommand[] {
    return plan.config.families.map((family) => ({ argv: this.tools[family].restoreArgv(), input: renderIptablesTransition(EMPTY_IPTABLES_STATE, plannedIptablesState(plan, family)) }));
  }

  async check(plan: RulesPlan): Promise<void> {
    validateForIptables(plan);
    for (const family of plan.config.families) await this.tools[family].test(renderIptablesTransition(EMPTY_IPTABLES_STATE, plannedIptablesState(plan, family)));
  }

  /** Both families are read (a family the plan no longer has may still hold our chains); one the host cannot do reads as empty. */
  private async readFamily(plan: RulesPlan, family: Family): Promise<LiveIptables | undefined> {
    try {
      return liveIptables(await this.tools[family].save('mangle'), plan.config.tableName);
    } catch (error) {
      if (!plan.config.families.includes(family) && isTproxyError(error)) return undefined;
      throw error;
    }
  }

  async read(plan: RulesPlan): Promise<IptablesOwned> {
    const live = { 4: await this.readFamily(plan, 4), 6: await this.readFamily(plan, 6) };
    const parts = FAMILIES.map((f) => live[f]).filter((l): l is LiveIptables => l !== undefined);
    const foreign = parts.flatMap((l) => l.foreignChains);
    const record = parts.map((l) => l.record).find((r) => r !== undefined);
    return {
      exists: parts.some((l) => !isEmpty(l.state)),
      live,
      ...(record ? { record } : {}),
      ...(foreign.length > 0 ? { foreign: `chain(s) ${foreign.join(', ')} of the mangle table hold rules that tproxy did not write; they are left alone: choose another --table, or remove them yourself` } : {}),
    };
  }

  private async transition(family: Family, from: IptablesState, to: IptablesState): Promise<void> {
    if (isEmpty(from) && isEmpty(to)) return;
    await this.tools[family].restore(renderIptablesTransition(from, to));
  }

  async install(plan: RulesPlan, before: IptablesOwned): Promise<void> {
    for (const family of FAMILIES) {
      const to = plan.config.families.includes(family) ? plannedIptablesState(plan, family) : EMPTY_IPTABLES_STATE;
      await this.transition(family, before.live[family]?.state ?? EMPTY_IPTABLES_STATE, to);
    }
  }

  async restore(plan: RulesPlan, before: IptablesOwned): Promise<void> {
    const now = await this.read(plan);
    for (const family of FAMILIES) await this.transition(family, now.live[family]?.state ?? EMPTY_IPTABLES_STATE, before.live[family]?.state ?? EMPTY_IPTABLES_STATE);
  }

  async remove(_plan: RulesPlan, before: IptablesOwned): Promise<boolean> {
    for (const family of FAMILIES) await this.transition(family, before.live[family]?.state ?? EMPTY_IPTABLES_STATE, EMPTY_IPTABLES_STATE);
    return before.exists;
  }

  status(plan: RulesPlan, live: IptablesOwned): StatusReport {
    const reports = plan.config.families.map((family) => iptablesStatus(plan, family, live.live[family] ?? { state: EMPTY_IPTABLES_STATE, counters: new Map(), foreignChains: [] }));
    return { pieces: reports.flatMap((r) => r.pieces), unexpected: reports.flatMap((r) => r.unexpected) };
  }

  async markUsage(plan: RulesPlan): Promise<MarkUsage[]> {
    const usages: MarkUsage[] = [];
    for (const family of plan.config.families) {
      usages.push(...markUsageFromIptables(parseIptablesDump(await this.tools[family].save()), iptablesBinary(this.flavour, family, 'save').replace(/-save$/, ''), plan.config.tableName));
    }
    return usages;
  }
}

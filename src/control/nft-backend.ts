/** The nftables backend: our one `inet` table, replaced in one `nft -f` transaction. */
import { TproxyError, isTproxyError } from '../core/errors.js';
import { decodeRecord } from '../core/rules/record.js';
import { markUsageFromNft, type MarkUsage } from '../core/rules/mark-usage.js';
import type { NftListing } from '../core/nft-listing.js';
import { renderNftDeleteScript, renderNftRestoreScript, renderNftScript } from '../core/rules/render-nft.js';
import type { RulesPlan } from '../core/rules/planned.js';
import { nftStatus, type StatusReport } from '../core/rules/status.js';
import type { CommandRunner } from '../sys/exec.js';
import type { BackendCommand, OwnedRules, RulesBackend } from './backend.js';
import { Nft, tableComment } from './nft.js';

export interface NftOwned extends OwnedRules {
  /** `nft list table` text: what a rollback feeds back. */
  readonly listing?: string;
  readonly ruleset?: NftListing;
}

const EMPTY: NftListing = { tables: [], chains: [], sets: [], rules: [] };

export class NftBackend implements RulesBackend<NftOwned> {
  readonly name = 'nft';
  readonly nft: Nft;

  constructor(runner: CommandRunner) {
    this.nft = new Nft(runner);
  }

  render(plan: RulesPlan): BackendCommand[] {
    return [{ argv: ['nft', '-f', '-'], input: renderNftScript(plan) }];
  }

  async check(plan: RulesPlan): Promise<void> {
    await this.nft.check(renderNftScript(plan)).catch((error: unknown) => {
      // nft's words cannot name a table in its scripts (e.g. `tproxy`, `socket`).
      const name = plan.table.name;
      if (isTproxyError(error, 'ERR_COMMAND_FAILED') && new RegExp(`unexpected ${name}, expecting`).test(String(error.details.stderr ?? ''))) {
        throw new TproxyError('ERR_INVALID_ARGUMENT', `tableName: "${name}" is a word of the nft language and cannot name a table; choose another name, e.g. ${name}_rules`, { field: 'tableName' }, { cause: error });
      }
      throw error;
    });
  }

  async read(plan: RulesPlan): Promise<NftOwned> {
    const { family, name } = plan.table;
    const listing = await this.nft.listTable(family, name);
    if (listing === undefined) return { exists: false };
    const record = decodeRecord(tableComment(listing));
    const ruleset = await this.nft.readTable(family, name);
    return {
      exists: true,
      listing,
      ...(ruleset ? { ruleset } : {}),
      ...(record
        ? { record }
        : { foreign: `table ${family} ${name} exists but was not created by tproxy (it has no tproxy record comment); it is left alone: choose another --table, or delete it yourself (nft delete table ${family} ${name})` }),
    };
  }

  install(plan: RulesPlan): Promise<void> {
    return this.nft.apply(renderNftScript(plan));
  }

  restore(plan: RulesPlan, before: NftOwned): Promise<void> {
    return this.nft.apply(renderNftRestoreScript(plan.table.family, plan.table.name, before.listing));
  }

  async remove(plan: RulesPlan, before: NftOwned): Promise<boolean> {
    if (!before.exists) return false;
    await this.nft.apply(renderNftDeleteScript(plan));
    return true;
  }

  status(plan: RulesPlan, live: NftOwned): StatusReport {
    return nftStatus(plan, live.ruleset ?? EMPTY);
  }

  async markUsage(plan: RulesPlan): Promise<MarkUsage[]> {
    return markUsageFromNft(await this.nft.listRuleset(), plan.table);
  }
}

/**
 * Everything the checks read: the snapshot, the model's world built from it, the configuration
 * doctor was given (with the fwmark, route table and priority our table records, when it exists: the live host
 * wins), the plan for it, and the commands that re-create our side. Pure.
 */
import { parseNftJson, type NftJsonTable, type NftRuleset } from '../rules/nft-json.js';
import type { RulesConfig } from '../rules/config.js';
import { planRules } from '../rules/plan.js';
import { decodeRecord, type RulesRecord } from '../rules/record.js';
import type { RulesPlan } from '../rules/ruleset.js';
import { readSource, worldFromSnapshot, type Snapshot } from '../model/snapshot.js';
import type { World } from '../model/world.js';

export interface FixCommands {
  /** Re-creates our table and policy routing: `tproxy rules apply <options>`. */
  readonly apply: string;
  /** Starts the proxy with its rules: `tproxy run <options>`. */
  readonly run: string;
}

export interface DoctorInput {
  readonly snapshot: Snapshot;
  readonly world: World;
  readonly config: RulesConfig;
  readonly plan: RulesPlan;
  /** `nft -j list ruleset` as objects (empty when nft could not be read). */
  readonly nft: NftRuleset;
  /** Our table, and the record in its comment. */
  readonly ours: { readonly table?: NftJsonTable; readonly record?: RulesRecord };
  readonly commands: FixCommands;
  /** The proxy's upstream mode: with `transparent` the divert rule carries the servers' replies. */
  readonly upstream: 'direct' | 'transparent';
}

export function doctorInput(snapshot: Snapshot, requested: RulesConfig, commands: FixCommands, upstream: 'direct' | 'transparent' = 'direct'): DoctorInput {
  const nft = readSource('nft', () => (snapshot.nft ? parseNftJson(JSON.stringify(snapshot.nft)) : { tables: [], chains: [], sets: [], rules: [] }));
  const table = nft.tables.find((t) => t.family === 'inet' && t.name === requested.tableName);
  const record = decodeRecord(table?.comment ?? snapshot.host?.tableComments?.[`inet ${requested.tableName}`]);
  const config: RulesConfig = record
    ? { ...requested, fwmark: record.fwmark, fwmarkMask: record.fwmarkMask, routeTable: record.routeTable, rulePriority: record.rulePriority }
    : requested;
  return {
    snapshot,
    world: worldFromSnapshot(snapshot),
    config,
    plan: planRules(config),
    nft,
    ours: { ...(table ? { table } : {}), ...(record ? { record } : {}) },
    commands,
    upstream,
  };
}

/** Quote one word for a POSIX shell when it needs it. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Everything the checks read: the snapshot, the model's world built from it, the configuration
 * doctor was given (with the fwmark, route table and priority our table records, when it exists: the live host
 * wins), the plan for it, and the commands that re-create our side. Pure.
 *
 * Who owns the rules: tproxy when our table (or chains) exist, or when nothing says otherwise;
 * someone else when tproxy is told not to apply rules (--no-rules, rules.apply false) or when
 * TPROXY rules of other tables are in force and ours are absent. Rules of others are judged by what
 * they do (the probes follow packets through them) and fixed with commands of their own family;
 * the fwmark their TPROXY rules set replaces the configured one.
 */
import { parseNftListing, type NftJsonTable, type NftListing } from '../nft-listing.js';
import type { RulesConfig } from '../rules/config.js';
import { planRules } from '../rules/plan.js';
import { decodeRecord, type RulesRecord } from '../rules/record.js';
import type { RulesPlan } from '../rules/planned.js';
import { readSource, worldFromSnapshot, type Snapshot } from '../model/snapshot.js';
import type { World } from '../model/world.js';
import { foreignTproxyRules, type ForeignTproxyRule } from './foreign.js';

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
  readonly nft: NftListing;
  /** Our table, and the record in its comment. */
  readonly ours: { readonly table?: NftJsonTable; readonly record?: RulesRecord };
  readonly commands: FixCommands;
  /** The proxy's upstream mode: with `transparent` the divert rule carries the servers' replies. */
  readonly upstream: 'direct' | 'transparent';
  /** The TCP connection cap each listener's workers would apply here (absent with a snapshot: not this host's limits). */
  readonly capacity?: readonly ListenerCapacity[];
  /** Who wrote the rules in force: tproxy (our table or chains), or someone else. */
  readonly rulesBy: 'tproxy' | 'others';
  /** TPROXY rules outside our table, in nft, iptables-nft or iptables-legacy. */
  readonly foreign: readonly ForeignTproxyRule[];
}

export interface DoctorInputOptions {
  /** rules.apply of the configuration: false when the rules are managed outside tproxy. */
  readonly rulesApply?: boolean;
  /** The TCP connection cap each listener's workers would apply here (absent with a snapshot: not this host's limits). */
  readonly capacity?: readonly ListenerCapacity[];
}

export interface ListenerCapacity {
  readonly listener: string;
  readonly configured: number;
  readonly perWorker: number;
  readonly fileLimit: number;
  /** Descriptors each flow holds (its two sockets). */
  readonly descriptorsPerFlow: number;
  /** Pipes (two descriptors each) a worker shares among its flows with bytes in flight (splice engine; 0 otherwise). */
  readonly sharedPipes: number;
  readonly reservedDescriptors: number;
  /** The file limit the configured cap needs, reserve included. */
  readonly neededFileLimit: number;
}

/** Our iptables chains (the iptables backend's), in either flavour. */
function ourChainsIn(snapshot: Snapshot, tableName: string): boolean {
  const chain = new RegExp(`^:${tableName.toUpperCase()}_PRE `, 'm');
  return [snapshot.iptables.ipv4, snapshot.iptables.ipv6, snapshot.iptablesLegacy?.ipv4, snapshot.iptablesLegacy?.ipv6].some((t) => chain.test(t ?? ''));
}

export function doctorInput(snapshot: Snapshot, requested: RulesConfig, commands: FixCommands, upstream: 'direct' | 'transparent' = 'direct', options: DoctorInputOptions = {}): DoctorInput {
  const nft = readSource('nft', () => (snapshot.nft ? parseNftListing(snapshot.nft) : { tables: [], chains: [], sets: [], rules: [] }));
  const table = nft.tables.find((t) => t.family === 'inet' && t.name === requested.tableName);
  const record = decodeRecord(table?.comment ?? snapshot.host?.tableComments?.[`inet ${requested.tableName}`]);
  const world = worldFromSnapshot(snapshot);
  const foreign = foreignTproxyRules(world, requested.tableName);
  const ours = table !== undefined || ourChainsIn(snapshot, requested.tableName);
  const rulesBy = !ours && (options.rulesApply === false || foreign.length > 0) ? 'others' : 'tproxy';
  const mark = foreign.find((r) => r.mark !== undefined)?.mark;
  const config: RulesConfig = record
    ? { ...requested, fwmark: record.fwmark, fwmarkMask: record.fwmarkMask, routeTable: record.routeTable, rulePriority: record.rulePriority }
    : rulesBy === 'others' && mark
      ? { ...requested, fwmark: mark.value & mark.mask, fwmarkMask: mark.mask }
      : requested;
  return {
    snapshot,
    world,
    config,
    plan: planRules(config),
    nft,
    ours: { ...(table ? { table } : {}), ...(record ? { record } : {}) },
    commands,
    upstream,
    ...(options.capacity ? { capacity: options.capacity } : {}),
    rulesBy,
    foreign,
  };
}

/** Our record in a snapshot: the nft table's comment, or the comment of our iptables jump rule (either flavour). */
export function recordInSnapshot(snapshot: Snapshot, tableName: string): { record: RulesRecord; where: string; backend: 'nft' | 'iptables' | 'iptables-legacy' } | undefined {
  const nft = snapshot.nft ? parseNftListing(snapshot.nft) : undefined;
  const table = nft?.tables.find((t) => t.family === 'inet' && t.name === tableName);
  const fromNft = decodeRecord(table?.comment ?? snapshot.host?.tableComments?.[`inet ${tableName}`]);
  if (fromNft) return { record: fromNft, where: `table inet ${tableName}`, backend: 'nft' };
  const jump = new RegExp(`--comment "?(tproxy v1 [^"]*)"? -j ${tableName.toUpperCase()}_PRE\\b`);
  for (const [text, backend, where] of [
    [snapshot.iptables.ipv4, 'iptables', 'iptables'],
    [snapshot.iptables.ipv6, 'iptables', 'ip6tables'],
    [snapshot.iptablesLegacy?.ipv4, 'iptables-legacy', 'iptables-legacy'],
    [snapshot.iptablesLegacy?.ipv6, 'iptables-legacy', 'ip6tables-legacy'],
  ] as const) {
    const record = decodeRecord(jump.exec(text ?? '')?.[1]);
    if (record) return { record, where: `the ${where} mangle chains ${tableName.toUpperCase()}_*`, backend };
  }
  return undefined;
}

/** Quote one word for a POSIX shell when it needs it. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

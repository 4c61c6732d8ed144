/**
 * `nft -j list ruleset` (or `list table`), libnftables-json(5), read into its objects: tables,
 * chains, sets and rules, the rules with their expressions as nft listed them. The one reader of
 * that document: the model (core/model/nft-json.ts) gives the expressions their meaning, the
 * rules' drift check (core/rules/status.ts) compares them with what it planned, doctor and the
 * mark-collision check read them too. Pure.
 *
 * An object without the fields that name it (family, table, name, chain) is left out, as is one of
 * a family nft does not have; fields of the wrong type are left out of their object.
 */
import { TproxyError } from './errors.js';

/** The netfilter table families (NFPROTO_*) as nft names them. */
export type TableFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

const TABLE_FAMILIES: readonly string[] = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'] satisfies readonly TableFamily[];

/** One expression of a rule as nft lists it, e.g. `{ match: { op, left, right } }`, `{ accept: null }`. */
export type NftExpression = Record<string, unknown>;

export interface NftJsonTable {
  readonly family: TableFamily;
  readonly name: string;
  readonly handle?: number;
  readonly comment?: string;
}
export interface NftJsonChain {
  readonly family: TableFamily;
  readonly table: string;
  readonly name: string;
  readonly handle?: number;
  /** Base chains only: type, hook, priority and policy. */
  readonly type?: string;
  readonly hook?: string;
  readonly prio?: number;
  readonly policy?: string;
}
export interface NftJsonSet {
  readonly family: TableFamily;
  readonly table: string;
  readonly name: string;
  /** `ipv4_addr`; a concatenation reads `ipv4_addr . inet_service`; empty when nft gave none. */
  readonly type: string;
  readonly flags?: readonly string[];
  /** Absent when the set is empty (nft leaves it out). */
  readonly elem?: readonly unknown[];
}
export interface NftJsonRule {
  readonly family: TableFamily;
  readonly table: string;
  readonly chain: string;
  readonly handle?: number;
  readonly comment?: string;
  /** As listed: normally NftExpression objects; anything else is kept for the reader to judge. */
  readonly expr: readonly unknown[];
}

/** A whole listing, split by object kind, each kind in the order nft listed it. */
export interface NftListing {
  readonly tables: readonly NftJsonTable[];
  readonly chains: readonly NftJsonChain[];
  readonly sets: readonly NftJsonSet[];
  readonly rules: readonly NftJsonRule[];
}

type Json = Record<string, unknown>;

export function isJsonObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The one key of `{ key: body }` (nft's shape for objects and expressions); empty otherwise. */
export function onlyEntry(obj: Json): [string, unknown] {
  const entries = Object.entries(obj);
  return entries.length === 1 ? entries[0]! : ['', undefined];
}

function tableFamily(value: unknown): TableFamily | undefined {
  return typeof value === 'string' && TABLE_FAMILIES.includes(value) ? (value as TableFamily) : undefined;
}

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const number = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);

/** `{ key: value }` for the values that are defined: optional fields stay absent, not undefined. */
function defined<T extends Record<string, unknown>>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as T;
}

function setType(value: unknown): string {
  if (Array.isArray(value)) return value.map(String).join(' . ');
  return typeof value === 'string' ? value : '';
}

/**
 * Read the output of `nft -j list ruleset` (text, or JSON already parsed). Empty text reads as an
 * empty ruleset (nft prints nothing for one on some versions).
 */
export function parseNftListing(input: unknown): NftListing {
  let doc: unknown = input;
  if (typeof input === 'string') {
    if (input.trim() === '') return { tables: [], chains: [], sets: [], rules: [] };
    try {
      doc = JSON.parse(input);
    } catch (error) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `nft JSON could not be parsed: ${(error as Error).message}`, {}, { cause: error });
    }
  }
  const items = isJsonObject(doc) && Array.isArray(doc.nftables) ? (doc.nftables as unknown[]) : undefined;
  if (!items) throw new TproxyError('ERR_INVALID_ARGUMENT', 'nft JSON has no "nftables" array: expected the output of `nft -j list ruleset`');
  const tables: NftJsonTable[] = [];
  const chains: NftJsonChain[] = [];
  const sets: NftJsonSet[] = [];
  const rules: NftJsonRule[] = [];
  for (const item of items) {
    if (!isJsonObject(item)) continue;
    const [kind, body] = onlyEntry(item);
    if (!isJsonObject(body)) continue;
    const family = tableFamily(body.family);
    if (!family) continue;
    const table = text(body.table);
    const name = text(body.name);
    if (kind === 'table') {
      if (name !== undefined) tables.push(defined({ family, name, handle: number(body.handle), comment: text(body.comment) }));
    } else if (kind === 'chain') {
      if (table !== undefined && name !== undefined) {
        chains.push(defined({ family, table, name, handle: number(body.handle), type: text(body.type), hook: text(body.hook), prio: number(body.prio), policy: text(body.policy) }));
      }
    } else if (kind === 'set') {
      if (table !== undefined && name !== undefined) {
        const flags = Array.isArray(body.flags) ? body.flags.map(String) : typeof body.flags === 'string' ? [body.flags] : undefined;
        const elem = Array.isArray(body.elem) ? (body.elem as unknown[]) : undefined;
        sets.push(defined({ family, table, name, type: setType(body.type), flags, elem }));
      }
    } else if (kind === 'rule') {
      const chain = text(body.chain);
      if (table !== undefined && chain !== undefined) {
        rules.push(defined({ family, table, chain, handle: number(body.handle), comment: text(body.comment), expr: Array.isArray(body.expr) ? (body.expr as unknown[]) : [] }));
      }
    }
  }
  return { tables, chains, sets, rules };
}

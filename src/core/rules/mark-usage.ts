/**
 * Which packet-mark bits other rules on the host match or set, read from `nft -j list ruleset`.
 * Feeds collision detection: our fwmark must not share bits with anyone else's. Pure.
 */
import { FULL_MASK } from './marks.js';
import type { MarkBits } from './marks.js';
import { isJsonObject, type NftExpression, type NftListing } from '../nft-listing.js';

/**
 * - match: the rule tests the mark (value under mask)
 * - set: the rule writes these bits (mask) with constant values
 * - copy: the rule writes the mark from something we cannot evaluate (e.g. `meta mark set ct mark`)
 * - opaque: an iptables-nft (xt) target or match whose arguments nft cannot show
 */
export interface MarkUsage {
  readonly kind: 'match' | 'set' | 'copy' | 'opaque';
  readonly mark: MarkBits;
  /** Where: `table ip foo chain bar handle 7 ("comment")`. */
  readonly where: string;
}

function isMetaMark(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { meta?: { key?: string } }).meta?.key === 'mark';
}

function numbers(right: unknown): number[] | undefined {
  if (typeof right === 'number') return [right >>> 0];
  const set = (right as { set?: unknown[] } | null)?.set;
  if (Array.isArray(set) && set.every((v) => typeof v === 'number')) return set.map((v) => v >>> 0);
  return undefined;
}

function matchUsages(match: { left?: unknown; right?: unknown }, where: string): MarkUsage[] {
  let mask: number | undefined;
  if (isMetaMark(match.left)) mask = FULL_MASK;
  const and = (match.left as { '&'?: unknown[] } | null)?.['&'];
  if (Array.isArray(and) && isMetaMark(and[0]) && typeof and[1] === 'number') mask = and[1] >>> 0;
  if (mask === undefined) return [];
  const values = numbers(match.right);
  if (!values) return [{ kind: 'copy', mark: { value: 0, mask }, where }];
  return values.map((value) => ({ kind: 'match', mark: { value, mask: mask ?? FULL_MASK }, where }));
}

/** Bits written by `meta mark set <value>`: constants, `mark | C`, `mark & A`, `(mark & A) | B`. */
function setUsage(value: unknown, where: string): MarkUsage {
  if (typeof value === 'number') return { kind: 'set', mark: { value: value >>> 0, mask: FULL_MASK }, where };
  const v = value as Record<string, unknown[] | undefined> | null;
  const or = v?.['|'];
  const and = v?.['&'];
  if (Array.isArray(or) && typeof or[1] === 'number') {
    const orBits = or[1] >>> 0;
    if (isMetaMark(or[0])) return { kind: 'set', mark: { value: orBits, mask: orBits }, where };
    const inner = (or[0] as Record<string, unknown[] | undefined> | null)?.['&'];
    if (Array.isArray(inner) && isMetaMark(inner[0]) && typeof inner[1] === 'number') {
      return { kind: 'set', mark: { value: orBits, mask: (~inner[1] | orBits) >>> 0 }, where };
    }
  }
  if (Array.isArray(and) && isMetaMark(and[0]) && typeof and[1] === 'number') return { kind: 'set', mark: { value: 0, mask: ~and[1] >>> 0 }, where };
  return { kind: 'copy', mark: { value: 0, mask: FULL_MASK }, where };
}

const XT_MARK_USERS = new Set(['MARK', 'CONNMARK', 'TPROXY', 'mark', 'connmark']);

function expressionUsages(expr: NftExpression, where: string): MarkUsage[] {
  if (expr.match) return matchUsages(expr.match, where);
  const mangle = expr.mangle as { key?: unknown; value?: unknown } | undefined;
  if (mangle && isMetaMark(mangle.key)) return [setUsage(mangle.value, where)];
  const xt = expr.xt as { name?: string } | undefined;
  if (xt?.name && XT_MARK_USERS.has(xt.name)) return [{ kind: 'opaque', mark: { value: 0, mask: FULL_MASK }, where: `${where} (xt ${xt.name})` }];
  return [];
}

/** Mark usage of every rule outside our own table. */
export function markUsageFromNft(listing: NftListing, ours: { family: string; name: string }): MarkUsage[] {
  const usages: MarkUsage[] = [];
  for (const rule of listing.rules) {
    if (rule.family === ours.family && rule.table === ours.name) continue;
    const where = `table ${rule.family} ${rule.table} chain ${rule.chain} handle ${rule.handle}${rule.comment ? ` ("${rule.comment}")` : ''}`;
    for (const expr of rule.expr) if (isJsonObject(expr)) usages.push(...expressionUsages(expr, where));
  }
  return usages;
}

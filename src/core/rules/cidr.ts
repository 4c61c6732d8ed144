/** CIDR prefixes for the bypass sets: parsing, canonical text, and removal of covered prefixes. Pure. */
import type { Family } from '../net/constants.js';
import { formatIp } from '../net/address.js';
import { type Prefix, parsePrefix } from '../net/prefix.js';
import { uncovered } from '../net/prefix-set.js';

export interface Cidr {
  readonly family: Family;
  /** Network address in canonical form (IPv6 compressed, lower case). */
  readonly address: string;
  readonly length: number;
}

export function formatCidr(cidr: Cidr): string {
  return `${cidr.address}/${cidr.length}`;
}

function toCidr(prefix: Prefix): Cidr {
  return { family: prefix.family, address: formatIp({ family: prefix.family, value: prefix.start }), length: prefix.length };
}

/**
 * `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). `field` names the config field
 * in errors. Host bits set below the prefix length are refused with the network address to use.
 */
export function parseCidr(text: string, field: string): Cidr {
  return toCidr(parsePrefix(text, field));
}

/**
 * Parse a bypass list and drop duplicates and prefixes covered by a wider one, keeping the input
 * order otherwise: nftables interval sets refuse overlapping elements, and what we apply must read
 * back unchanged. O(n log n) (100,000 prefixes in well under a second).
 */
export function bypassCidrs(texts: readonly string[], field: string): Cidr[] {
  const prefixes = texts.map((t) => parsePrefix(t, field));
  const keep = uncovered(prefixes);
  return prefixes.filter((_, i) => keep[i]).map(toCidr);
}

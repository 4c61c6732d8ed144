/** CIDR prefixes for the bypass sets: parsing, canonical text, and removal of covered prefixes. Pure. */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../errors.js';
import type { Family } from '../net/constants.js';

export interface Cidr {
  readonly family: Family;
  /** Network address in canonical form (IPv6 compressed, lower case). */
  readonly address: string;
  readonly length: number;
}

export function formatCidr(cidr: Cidr): string {
  return `${cidr.address}/${cidr.length}`;
}

function bits(family: Family): number {
  return family === 4 ? 32 : 128;
}

function toBigInt(address: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  return address.toByteArray().reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
}

function fromBigInt(value: bigint, family: Family): string {
  const bytes: number[] = [];
  for (let i = 0; i < bits(family) / 8; i++) bytes.unshift(Number((value >> BigInt(8 * i)) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/**
 * `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). `field` names the config field
 * in errors. Host bits set below the prefix length are refused with the network address to use.
 */
export function parseCidr(text: string, field: string): Cidr {
  const bad = (why: string): never => {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `${field}: "${text}" ${why}`, { field, value: text });
  };
  const [addressText = '', lengthText, ...rest] = text.trim().split('/');
  if (rest.length > 0) bad('is not a CIDR prefix (use ADDRESS/LENGTH, e.g. 10.0.0.0/8 or 2001:db8::/32)');
  let family: Family;
  if (ipaddr.IPv4.isValidFourPartDecimal(addressText)) family = 4;
  else if (ipaddr.IPv6.isValid(addressText) && !addressText.includes('%')) family = 6;
  else return bad('is not an IPv4 or IPv6 address or prefix (use ADDRESS/LENGTH, e.g. 10.0.0.0/8 or 2001:db8::/32)');
  const length = lengthText === undefined ? bits(family) : /^\d{1,3}$/.test(lengthText) ? Number(lengthText) : NaN;
  if (!Number.isInteger(length) || length > bits(family)) bad(`has an invalid prefix length (0-${bits(family)} for IPv${family})`);
  const parsed = ipaddr.parse(addressText);
  const value = toBigInt(parsed);
  const hostBits = BigInt(bits(family) - length);
  const network = (value >> hostBits) << hostBits;
  if (network !== value) bad(`has host bits set below /${length}: did you mean ${fromBigInt(network, family)}/${length}?`);
  return { family, address: fromBigInt(network, family), length };
}

function contains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.length > inner.length) return false;
  const shift = BigInt(bits(outer.family) - outer.length);
  return toBigInt(ipaddr.parse(outer.address)) >> shift === toBigInt(ipaddr.parse(inner.address)) >> shift;
}

/**
 * Drop duplicates and prefixes covered by a wider one, keep the input order otherwise: nftables
 * interval sets refuse overlapping elements, and what we apply must read back unchanged.
 */
export function withoutCovered(cidrs: readonly Cidr[]): Cidr[] {
  const kept: Cidr[] = [];
  cidrs.forEach((cidr, i) => {
    const coveredBy = cidrs.findIndex((other, j) => j !== i && contains(other, cidr) && (other.length < cidr.length || j < i));
    if (coveredBy === -1) kept.push(cidr);
  });
  return kept;
}

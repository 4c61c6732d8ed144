/**
 * IPv4 and IPv6 prefixes as numbers: the one home of prefixes, for the interval sets
 * (prefix-set.ts), the bypass lists (rules/cidr.ts), the route table and the kernel model.
 * parsePrefix reads what a user wrote (strict: host bits set are refused with the network to use);
 * parseKernelPrefix reads what the kernel's tools print (`default`, bare addresses). Pure.
 */
import { TproxyError } from '../errors.js';
import { quoted } from '../quote.js';
import { familyBits, parseAddress, parseIp, formatIp, type IpAddress } from './address.js';
import type { Family } from './constants.js';

/** A prefix: its first address and its length. `start` has no bits set below the length. */
export interface Prefix {
  readonly family: Family;
  readonly start: bigint;
  readonly length: number;
}

/** The last address of the prefix. */
export function prefixEnd(prefix: Prefix): bigint {
  return prefix.start | ((1n << BigInt(familyBits(prefix.family) - prefix.length)) - 1n);
}

/** `10.0.0.0/8`, always with its length (the form our rules and lists write). */
export function formatPrefix(prefix: Prefix): string {
  return `${formatIp({ family: prefix.family, value: prefix.start })}/${prefix.length}`;
}

/** As `ip` and `nft` print a prefix: a full-length prefix as a bare address. */
export function formatKernelPrefix(prefix: Prefix): string {
  const address = formatIp({ family: prefix.family, value: prefix.start });
  return prefix.length === familyBits(prefix.family) ? address : `${address}/${prefix.length}`;
}

/**
 * `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). `field` names where the text
 * came from in errors. Host bits set below the prefix length are refused with the network to use.
 */
export function parsePrefix(text: string, field: string): Prefix {
  const bad = (why: string): never => {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `${field}: ${quoted(text)} ${why}`, { field, value: quoted(text) });
  };
  const slash = text.indexOf('/');
  const addressText = (slash === -1 ? text : text.slice(0, slash)).trim();
  const lengthText = slash === -1 ? undefined : text.slice(slash + 1).trim();
  if (lengthText?.includes('/')) bad('is not a CIDR prefix (use ADDRESS/LENGTH, e.g. 10.0.0.0/8 or 2001:db8::/32)');
  const address = parseAddress(addressText);
  if (!address) return bad('is not an IPv4 or IPv6 address or prefix (use ADDRESS/LENGTH, e.g. 10.0.0.0/8 or 2001:db8::/32)');
  const bits = familyBits(address.family);
  const length = lengthText === undefined ? bits : /^\d{1,3}$/.test(lengthText) ? Number(lengthText) : NaN;
  if (!Number.isInteger(length) || length > bits) bad(`has an invalid prefix length (0-${bits} for IPv${address.family})`);
  const hostBits = BigInt(bits - length);
  const start = (address.value >> hostBits) << hostBits;
  if (start !== address.value) bad(`has host bits set below /${length}: did you mean ${formatIp({ family: address.family, value: start })}/${length}?`);
  return { family: address.family, start, length };
}

/** As `ip -j route`, `nft -j` and iptables-save print a prefix: `default` / `any` / `all` (with a family), a bare address, host bits masked. */
export function parseKernelPrefix(text: string, family?: Family): Prefix {
  if (text === 'default' || text === 'any' || text === 'all') {
    if (family === undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', `${quoted(text)} needs a family`, { prefix: quoted(text) });
    return { family, start: 0n, length: 0 };
  }
  const [addr = '', len] = text.split('/');
  const ip = parseIp(addr);
  const length = len === undefined ? familyBits(ip.family) : Number(len);
  if (!Number.isInteger(length) || length < 0 || length > familyBits(ip.family)) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `${quoted(text)} has an invalid prefix length`, { prefix: quoted(text) });
  }
  return { family: ip.family, start: ip.value & prefixMask(ip.family, length), length };
}

export function prefixMask(family: Family, length: number): bigint {
  const total = BigInt(familyBits(family));
  const all = (1n << total) - 1n;
  return length === 0 ? 0n : (all >> (total - BigInt(length))) << (total - BigInt(length));
}

export function prefixContains(prefix: Prefix, ip: IpAddress): boolean {
  return prefix.family === ip.family && (ip.value & prefixMask(prefix.family, prefix.length)) === prefix.start;
}

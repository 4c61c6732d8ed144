/**
 * One IPv4 or IPv6 address or prefix as numbers: the form the interval sets (prefix-set.ts) and the
 * bypass lists (rules/cidr.ts) compute with. Addresses are unsigned integers in a bigint (32 or 128
 * bits), so both families share one code path. Pure.
 */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../errors.js';
import { quoted } from '../quote.js';
import type { Family } from './constants.js';

/** An address in the form lookups take: parse once with parseAddress, look up many times. */
export interface AddressKey {
  readonly family: Family;
  readonly value: bigint;
}

/** A prefix: its first address and its length. `start` has no bits set below the length. */
export interface Prefix {
  readonly family: Family;
  readonly start: bigint;
  readonly length: number;
}

export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** The last address of the prefix. */
export function prefixEnd(prefix: Prefix): bigint {
  return prefix.start | ((1n << BigInt(familyBits(prefix.family) - prefix.length)) - 1n);
}

const IPV4 = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

/**
 * `192.0.2.7` or `2001:db8::7` as an AddressKey, or undefined for anything else (IPv4 in four
 * decimal parts without leading zeros, IPv6 without a zone: the forms the kernel prints).
 */
export function parseAddress(text: string): AddressKey | undefined {
  const v4 = IPV4.exec(text);
  if (v4) {
    let value = 0;
    for (let i = 1; i <= 4; i++) {
      const octet = Number(v4[i]);
      if (octet > 255) return undefined;
      value = value * 256 + octet;
    }
    return { family: 4, value: BigInt(value) };
  }
  if (!text.includes(':') || text.includes('%') || !ipaddr.IPv6.isValid(text)) return undefined;
  let value = 0n;
  for (const part of ipaddr.IPv6.parse(text).parts) value = (value << 16n) | BigInt(part);
  return { family: 6, value };
}

/** Canonical text of an address: dotted quad, or IPv6 compressed in lower case. */
export function formatAddress(key: AddressKey): string {
  if (key.family === 4) {
    const n = Number(key.value);
    return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
  }
  const parts: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) parts.push(Number((key.value >> shift) & 0xffffn));
  return new ipaddr.IPv6(parts).toString();
}

export function formatPrefix(prefix: Prefix): string {
  return `${formatAddress({ family: prefix.family, value: prefix.start })}/${prefix.length}`;
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
  if (start !== address.value) bad(`has host bits set below /${length}: did you mean ${formatAddress({ family: address.family, value: start })}/${length}?`);
  return { family: address.family, start, length };
}

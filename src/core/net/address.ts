/**
 * IP addresses as numbers, for prefix and range matching. IPv4 in 32 bits, IPv6 in 128 bits
 * (IPv4-mapped IPv6 addresses stay IPv6, as the kernel sees them on an AF_INET6 socket).
 */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../errors.js';
import { quoted } from '../quote.js';
import type { Family } from '../net/constants.js';

export interface IpAddress {
  readonly family: Family;
  readonly value: bigint;
}

export interface IpPrefix {
  readonly family: Family;
  readonly value: bigint;
  readonly length: number;
}

export function bits(family: Family): number {
  return family === 4 ? 32 : 128;
}

export function isIpAddress(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || ipaddr.IPv6.isValid(text.replace(/%.*$/, ''));
}

export function parseIp(text: string): IpAddress {
  const clean = text.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (ipaddr.IPv4.isValidFourPartDecimal(clean)) {
    return { family: 4, value: BigInt(ipaddr.IPv4.parse(clean).toByteArray().reduce((acc, b) => acc * 256 + b, 0)) };
  }
  if (ipaddr.IPv6.isValid(clean)) {
    let value = 0n;
    for (const b of ipaddr.IPv6.parse(clean).toByteArray()) value = (value << 8n) | BigInt(b);
    return { family: 6, value };
  }
  throw new TproxyError('ERR_INVALID_ARGUMENT', `${quoted(text)} is not an IPv4 or IPv6 address`, { address: quoted(text) });
}

/** `10.0.0.0/8`, `2001:db8::/32`, a bare address (a full-length prefix), or `default` / `any`. */
export function parsePrefix(text: string, family?: Family): IpPrefix {
  if (text === 'default' || text === 'any' || text === 'all') {
    if (family === undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', `${quoted(text)} needs a family`, { prefix: quoted(text) });
    return { family, value: 0n, length: 0 };
  }
  const [addr = '', len] = text.split('/');
  const ip = parseIp(addr);
  const length = len === undefined ? bits(ip.family) : Number(len);
  if (!Number.isInteger(length) || length < 0 || length > bits(ip.family)) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `${quoted(text)} has an invalid prefix length`, { prefix: quoted(text) });
  }
  return { family: ip.family, value: ip.value & prefixMask(ip.family, length), length };
}

export function prefixMask(family: Family, length: number): bigint {
  const total = BigInt(bits(family));
  const all = (1n << total) - 1n;
  return length === 0 ? 0n : (all >> (total - BigInt(length))) << (total - BigInt(length));
}

export function prefixContains(prefix: IpPrefix, ip: IpAddress): boolean {
  return prefix.family === ip.family && (ip.value & prefixMask(prefix.family, prefix.length)) === prefix.value;
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return [24, 16, 8, 0].map((s) => (v >>> s) & 255).join('.');
  }
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((ip.value >> BigInt(i * 8)) & 255n));
  return ipaddr.fromByteArray(bytes).toString();
}

export function formatPrefix(prefix: IpPrefix): string {
  const addr = formatIp(prefix);
  return prefix.length === bits(prefix.family) ? addr : `${addr}/${prefix.length}`;
}

export function sameIp(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}

export function isAnyAddress(ip: IpAddress): boolean {
  return ip.value === 0n;
}

/** `::ffff:a.b.c.d` as its IPv4 address, for dual-stack socket lookups. */
export function unmapV4(ip: IpAddress): IpAddress | undefined {
  if (ip.family === 6 && ip.value >> 32n === 0xffffn) return { family: 4, value: ip.value & 0xffffffffn };
  return undefined;
}

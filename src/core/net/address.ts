/**
 * IP addresses as numbers: IPv4 in 32 bits, IPv6 in 128 bits of a bigint, so both families share
 * one code path (IPv4-mapped IPv6 addresses stay IPv6, as the kernel sees them on an AF_INET6
 * socket). The one home of addresses: the kernel model, the route table and the interval sets all
 * use IpAddress. Prefixes are in prefix.ts. Pure.
 */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../errors.js';
import { quoted } from '../quote.js';
import type { Family } from './constants.js';

export interface IpAddress {
  readonly family: Family;
  readonly value: bigint;
}

export function familyBits(family: Family): number {
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

const IPV4 = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

/**
 * `192.0.2.7` or `2001:db8::7`, or undefined for anything else (IPv4 in four decimal parts without
 * leading zeros, IPv6 without a zone: the forms the kernel prints). For lookups: parse once, look
 * up many times. parseIp is the lenient reader of tool output (brackets, zones).
 */
export function parseAddress(text: string): IpAddress | undefined {
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
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return [24, 16, 8, 0].map((s) => (v >>> s) & 255).join('.');
  }
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((ip.value >> BigInt(i * 8)) & 255n));
  return ipaddr.fromByteArray(bytes).toString();
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

/**
 * The packet the model follows: what the kernel's netfilter and routing code look at.
 * Plain data; statements return changed copies.
 */
import type { Family } from '../net/constants.js';
import type { IpAddress } from '../net/address.js';

export type L4Proto = 'tcp' | 'udp';

export type CtState = 'new' | 'established' | 'related' | 'invalid' | 'untracked';

export interface Packet {
  readonly family: Family;
  readonly l4proto: L4Proto;
  readonly saddr: IpAddress;
  readonly daddr: IpAddress;
  readonly sport: number;
  readonly dport: number;
  /** TCP flags as the header's bit field (TCP_FLAGS); 0 for UDP. */
  readonly tcpFlags: number;
  /** Incoming interface; undefined for a locally generated packet before it loops through lo. */
  readonly iif?: string;
  readonly mark: number;
  /** DSCP (the upper six bits of the TOS / traffic class byte). */
  readonly dscp: number;
  /** The two ECN bits of the TOS / traffic class byte. */
  readonly ecn: number;
  /** TTL (IPv4) or hop limit (IPv6). */
  readonly ttl: number;
  readonly ctState: CtState;
}

export const TCP_FLAGS: Readonly<Record<string, number>> = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20, ecn: 0x40, cwr: 0x80 };

export const CT_STATE_BITS: Readonly<Record<CtState, number>> = { invalid: 1, established: 2, related: 4, new: 8, untracked: 64 };

export const L4PROTO_NUMBERS: Readonly<Record<string, number>> = { icmp: 1, tcp: 6, udp: 17, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132, udplite: 136, gre: 47, esp: 50 };

export const NFPROTO_NUMBERS: Readonly<Record<string, number>> = { ipv4: 2, ipv6: 10 };

export function tcpFlagNames(flags: number): string[] {
  return Object.entries(TCP_FLAGS)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name);
}

export function isPureSyn(packet: Packet): boolean {
  return packet.l4proto === 'tcp' && (packet.tcpFlags & (TCP_FLAGS.syn! | TCP_FLAGS.ack! | TCP_FLAGS.rst! | TCP_FLAGS.fin!)) === TCP_FLAGS.syn;
}

export function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}

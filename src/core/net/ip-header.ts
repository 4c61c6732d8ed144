/**
 * The DSCP of a received packet, from the two places the kernel hands it over. Pure.
 *
 *   TCP: TCP_SAVED_SYN on an accepted socket (the listener set TCP_SAVE_SYN) returns the SYN's own
 *        IP and TCP headers, once. IPv4: the TOS byte is byte 1; IPv6: the traffic class is the 8
 *        bits after the 4-bit version. The DSCP is the upper 6 bits (the lower 2 are ECN).
 *   UDP: IP_RECVTOS / IPV6_RECVTCLASS put an IP_TOS (1 byte) or IPV6_TCLASS (int) control message
 *        on each datagram.
 */
import { IP_TOS, IPV6_TCLASS, SOL_IP, SOL_IPV6 } from './constants.js';
import type { ControlMessage } from './cmsg.js';

/** The DSCP of the SYN whose headers TCP_SAVED_SYN returned; undefined when they are not an IP header. */
export function dscpOfSavedSyn(headers: Buffer, length: number = headers.length): number | undefined {
  if (length < 2) return undefined;
  const first = headers[0] ?? 0;
  const version = first >> 4;
  if (version === 4) return (headers[1] ?? 0) >> 2;
  if (version === 6) return (((first & 0x0f) << 4) | ((headers[1] ?? 0) >> 4)) >> 2;
  return undefined;
}

/** The DSCP from an IP_TOS or IPV6_TCLASS control message, if one is there. */
export function dscpOfControlMessages(messages: readonly ControlMessage[]): number | undefined {
  for (const m of messages) {
    if (m.level === SOL_IP && m.type === IP_TOS && m.data.length >= 1) return (m.data[0] ?? 0) >> 2;
    if (m.level === SOL_IPV6 && m.type === IPV6_TCLASS && m.data.length >= 4) return (m.data.readInt32LE(0) & 0xff) >> 2;
  }
  return undefined;
}

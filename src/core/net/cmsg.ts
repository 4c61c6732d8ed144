/**
 * Ancillary data (control messages) of recvmsg/sendmsg. Pure.
 *
 * Layout on 64-bit Linux (include/linux/socket.h):
 *   struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } followed by data,
 *   each message aligned to sizeof(size_t) = 8: CMSG_ALIGN, CMSG_SPACE, CMSG_LEN below.
 */
import { TproxyError } from '../errors.js';
import { SOL_IP, SOL_IPV6, IP_ORIGDSTADDR, IPV6_ORIGDSTADDR } from './constants.js';
import { decodeSockaddr, type Endpoint } from './sockaddr.js';

export const CMSG_HEADER_SIZE = 16;
const ALIGN = 8;

export interface ControlMessage {
  readonly level: number;
  readonly type: number;
  readonly data: Buffer;
}

export const cmsgAlign = (n: number): number => (n + ALIGN - 1) & ~(ALIGN - 1);
export const cmsgSpace = (dataLength: number): number => CMSG_HEADER_SIZE + cmsgAlign(dataLength);
export const cmsgLen = (dataLength: number): number => CMSG_HEADER_SIZE + dataLength;

/** Encode control messages into one buffer, as sendmsg expects them in msg_control. */
export function encodeControlMessages(messages: readonly ControlMessage[]): Buffer {
  const total = messages.reduce((sum, m) => sum + cmsgSpace(m.data.length), 0);
  const buf = Buffer.alloc(total);
  let offset = 0;
  for (const m of messages) {
    buf.writeBigUInt64LE(BigInt(cmsgLen(m.data.length)), offset);
    buf.writeInt32LE(m.level, offset + 8);
    buf.writeInt32LE(m.type, offset + 12);
    m.data.copy(buf, offset + CMSG_HEADER_SIZE);
    offset += cmsgSpace(m.data.length);
  }
  return buf;
}

/** Decode the first `length` bytes of msg_control (length = msg_controllen after recvmsg). */
export function decodeControlMessages(buf: Buffer, length: number = buf.length): ControlMessage[] {
  const out: ControlMessage[] = [];
  let offset = 0;
  while (offset + CMSG_HEADER_SIZE <= length) {
    const cmsgLength = Number(buf.readBigUInt64LE(offset));
    if (cmsgLength < CMSG_HEADER_SIZE || offset + cmsgLength > length) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `malformed control message: cmsg_len ${cmsgLength} at offset ${offset} of ${length}`, { offset, cmsgLength, length });
    }
    out.push({
      level: buf.readInt32LE(offset + 8),
      type: buf.readInt32LE(offset + 12),
      data: Buffer.from(buf.subarray(offset + CMSG_HEADER_SIZE, offset + cmsgLength)),
    });
    offset += cmsgAlign(cmsgLength);
  }
  return out;
}

/** The original destination from IP_ORIGDSTADDR / IPV6_ORIGDSTADDR, if present. */
export function originalDestination(messages: readonly ControlMessage[]): Endpoint | undefined {
  for (const m of messages) {
    if ((m.level === SOL_IP && m.type === IP_ORIGDSTADDR) || (m.level === SOL_IPV6 && m.type === IPV6_ORIGDSTADDR)) {
      return decodeSockaddr(m.data, m.data.length);
    }
  }
  return undefined;
}

/**
 * Space to reserve in msg_control for what a listener receives: the original destination of either
 * family (28 bytes at most) and the DSCP (IP_TOS, 1 byte, or IPV6_TCLASS, 4) with room to spare.
 */
export const ORIGDSTADDR_CONTROL_SPACE = cmsgSpace(28) * 2;

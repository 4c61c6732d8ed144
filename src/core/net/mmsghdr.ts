/**
 * struct mmsghdr arrays for recvmmsg/sendmmsg on 64-bit Linux. Pure: the caller supplies the
 * addresses of the buffers the entries point to.
 *
 *   struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; (pad 4) }            64 bytes
 *
 * msg_len is what the kernel reports per entry: bytes received (recvmmsg) or sent (sendmmsg).
 */
import { MSGHDR_OFFSET, MSGHDR_SIZE, type MsghdrFields } from './msghdr.js';

export const MMSGHDR_SIZE = 64;
export const MMSGHDR_LENGTH_OFFSET = MSGHDR_SIZE;

/** Write entry `index` of an mmsghdr array. */
export function writeMmsghdr(target: Buffer, index: number, fields: MsghdrFields): void {
  const at = index * MMSGHDR_SIZE;
  target.writeBigUInt64LE(fields.nameAddress, at + MSGHDR_OFFSET.name);
  target.writeUInt32LE(fields.nameLength, at + MSGHDR_OFFSET.nameLength);
  target.writeUInt32LE(0, at + MSGHDR_OFFSET.nameLength + 4);
  target.writeBigUInt64LE(fields.iovAddress, at + MSGHDR_OFFSET.iov);
  target.writeBigUInt64LE(BigInt(fields.iovCount), at + MSGHDR_OFFSET.iovLength);
  target.writeBigUInt64LE(fields.controlAddress, at + MSGHDR_OFFSET.control);
  target.writeBigUInt64LE(BigInt(fields.controlLength), at + MSGHDR_OFFSET.controlLength);
  target.writeInt32LE(0, at + MSGHDR_OFFSET.flags);
  target.writeUInt32LE(0, at + MMSGHDR_LENGTH_OFFSET);
}

/**
 * Reset what the kernel overwrites on receive (msg_namelen, msg_controllen, msg_flags), without
 * touching the pointers: the cheap per-call preparation of a reused recvmmsg array.
 */
export function resetMmsghdrForReceive(target: Buffer, index: number, nameLength: number, controlLength: number): void {
  const at = index * MMSGHDR_SIZE;
  target.writeUInt32LE(nameLength, at + MSGHDR_OFFSET.nameLength);
  target.writeUInt32LE(controlLength, at + MSGHDR_OFFSET.controlLength);
  target.writeUInt32LE(0, at + MSGHDR_OFFSET.controlLength + 4);
  target.writeInt32LE(0, at + MSGHDR_OFFSET.flags);
}

/** Point entry `index` at a name (0/0 for a connected socket), for a send. */
export function setMmsghdrName(target: Buffer, index: number, nameAddress: bigint, nameLength: number): void {
  const at = index * MMSGHDR_SIZE;
  target.writeBigUInt64LE(nameAddress, at + MSGHDR_OFFSET.name);
  target.writeUInt32LE(nameLength, at + MSGHDR_OFFSET.nameLength);
}

export interface MmsghdrResult {
  readonly nameLength: number;
  readonly controlLength: number;
  readonly flags: number;
  /** msg_len: bytes received or sent for this entry. */
  readonly length: number;
}

export function readMmsghdrResult(source: Buffer, index: number): MmsghdrResult {
  const at = index * MMSGHDR_SIZE;
  return {
    nameLength: source.readUInt32LE(at + MSGHDR_OFFSET.nameLength),
    controlLength: source.readUInt32LE(at + MSGHDR_OFFSET.controlLength),
    flags: source.readInt32LE(at + MSGHDR_OFFSET.flags),
    length: source.readUInt32LE(at + MMSGHDR_LENGTH_OFFSET),
  };
}

/**
 * struct msghdr and struct iovec layout on 64-bit Linux. Pure: the caller supplies the addresses
 * of the buffers the structure points to.
 *
 *   struct iovec  { void *iov_base; size_t iov_len; }                                  16 bytes
 *   struct msghdr { void *msg_name; socklen_t msg_namelen; (pad 4)
 *                   struct iovec *msg_iov; size_t msg_iovlen;
 *                   void *msg_control; size_t msg_controllen; int msg_flags; (pad 4) } 56 bytes
 */

export const MSGHDR_SIZE = 56;
export const IOVEC_SIZE = 16;

export const MSGHDR_OFFSET = {
  name: 0,
  nameLength: 8,
  iov: 16,
  iovLength: 24,
  control: 32,
  controlLength: 40,
  flags: 48,
} as const;

export interface MsghdrFields {
  readonly nameAddress: bigint;
  readonly nameLength: number;
  readonly iovAddress: bigint;
  readonly iovCount: number;
  readonly controlAddress: bigint;
  readonly controlLength: number;
}

export function writeMsghdr(target: Buffer, fields: MsghdrFields): Buffer {
  target.writeBigUInt64LE(fields.nameAddress, MSGHDR_OFFSET.name);
  target.writeUInt32LE(fields.nameLength, MSGHDR_OFFSET.nameLength);
  target.writeBigUInt64LE(fields.iovAddress, MSGHDR_OFFSET.iov);
  target.writeBigUInt64LE(BigInt(fields.iovCount), MSGHDR_OFFSET.iovLength);
  target.writeBigUInt64LE(fields.controlAddress, MSGHDR_OFFSET.control);
  target.writeBigUInt64LE(BigInt(fields.controlLength), MSGHDR_OFFSET.controlLength);
  target.writeInt32LE(0, MSGHDR_OFFSET.flags);
  return target;
}

export function writeIovec(target: Buffer, index: number, baseAddress: bigint, length: number): void {
  target.writeBigUInt64LE(baseAddress, index * IOVEC_SIZE);
  target.writeBigUInt64LE(BigInt(length), index * IOVEC_SIZE + 8);
}

/** What recvmsg wrote back: lengths and flags. */
export function readMsghdrResult(msghdr: Buffer): { nameLength: number; controlLength: number; flags: number } {
  return {
    nameLength: msghdr.readUInt32LE(MSGHDR_OFFSET.nameLength),
    controlLength: Number(msghdr.readBigUInt64LE(MSGHDR_OFFSET.controlLength)),
    flags: msghdr.readInt32LE(MSGHDR_OFFSET.flags),
  };
}

// Counters of a TCP socket from the kernel (getsockopt TCP_INFO), for tests that count packets.
import * as C from '../../src/core/net/constants.js';
import type { Libc } from '../../src/sys/libc.js';

const TCP_INFO = 11;
/** Where struct tcp_info has tcpi_segs_in, and its size (Linux 6.x). */
const TCPI_SEGS_IN = 140;
const TCP_INFO_BYTES = 232;

/** Segments socket `fd` has received so far (tcpi_segs_in; the SYN counts), or -1 when the call fails. */
export function segmentsIn(libc: Libc, fd: number): number {
  const info = Buffer.alloc(TCP_INFO_BYTES);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(info.length, 0);
  if (libc.getsockopt(fd, C.IPPROTO_TCP, TCP_INFO, info, length) !== 0) return -1;
  return info.readUInt32LE(TCPI_SEGS_IN);
}

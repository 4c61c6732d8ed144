/**
 * io_uring ABI: system call numbers, opcodes, flags and the layouts of io_uring_params, SQEs and
 * CQEs (include/uapi/linux/io_uring.h). Pure: no I/O.
 */

/** x86_64 and aarch64 share these numbers (the generic table). */
export const SYS_IO_URING_SETUP = 425;
export const SYS_IO_URING_ENTER = 426;
export const SYS_IO_URING_REGISTER = 427;

export const IORING_SETUP_CQSIZE = 1 << 3;
export const IORING_SETUP_SUBMIT_ALL = 1 << 7;
export const IORING_SETUP_COOP_TASKRUN = 1 << 8;
export const IORING_SETUP_SINGLE_ISSUER = 1 << 12;
/** Completion work runs when the ring's thread enters the kernel to wait (Linux 6.1). */
export const IORING_SETUP_DEFER_TASKRUN = 1 << 13;

export const IORING_FEAT_SINGLE_MMAP = 1 << 0;
export const IORING_FEAT_EXT_ARG = 1 << 8;

export const IORING_ENTER_GETEVENTS = 1 << 0;
export const IORING_ENTER_EXT_ARG = 1 << 3;

export const IORING_OFF_SQ_RING = 0;
export const IORING_OFF_SQES = 0x10000000;

export const IORING_REGISTER_PROBE = 8;
export const IORING_REGISTER_PBUF_RING = 22;
export const IORING_REGISTER_SYNC_CANCEL = 24;

export const IORING_OP_NOP = 0;
export const IORING_OP_RECVMSG = 10;
export const IORING_OP_POLL_ADD = 6;
export const IORING_OP_TIMEOUT = 11;
export const IORING_OP_ACCEPT = 13;
export const IORING_OP_ASYNC_CANCEL = 14;
export const IORING_OP_LINK_TIMEOUT = 15;
export const IORING_OP_CONNECT = 16;
export const IORING_OP_CLOSE = 19;
export const IORING_OP_SEND = 26;
export const IORING_OP_RECV = 27;
export const IORING_OP_SHUTDOWN = 34;
/** A command to the file's driver: for sockets, SOCKET_URING_OP_* (setsockopt from Linux 6.7). */
export const IORING_OP_URING_CMD = 46;
/** bind() (Linux 6.11). */
export const IORING_OP_BIND = 56;

/** cmd_op of IORING_OP_URING_CMD on a socket. */
export const SOCKET_URING_OP_SETSOCKOPT = 3;

/** struct io_uring_probe: a 16-byte header, then 8 bytes per opcode ({ op, resv, flags, resv2 }). */
export const PROBE_HEADER_SIZE = 16;
export const PROBE_OP_SIZE = 8;
export const PROBE_OPS = 256;
export const IO_URING_OP_SUPPORTED = 1;

/** The opcodes a probe (IORING_REGISTER_PROBE) says this kernel supports. */
export function probedOpcodes(probe: Buffer): Set<number> {
  const supported = new Set<number>();
  const count = Math.min(probe.readUInt8(1), Math.floor((probe.length - PROBE_HEADER_SIZE) / PROBE_OP_SIZE));
  for (let i = 0; i < count; i++) {
    const at = PROBE_HEADER_SIZE + i * PROBE_OP_SIZE;
    if (probe.readUInt16LE(at + 2) & IO_URING_OP_SUPPORTED) supported.add(probe.readUInt8(at));
  }
  return supported;
}

export const IOSQE_IO_LINK = 1 << 2;
export const IOSQE_BUFFER_SELECT = 1 << 5;
export const IOSQE_CQE_SKIP_SUCCESS = 1 << 6;

/** sqe.len of a poll: one SQE reports until cancelled. */
export const IORING_POLL_ADD_MULTI = 1 << 0;
export const IORING_ASYNC_CANCEL_ALL = 1 << 0;
export const IORING_ASYNC_CANCEL_FD = 1 << 1;

/** sqe.ioprio of a recv / recvmsg: one SQE delivers every datagram until it ends (Linux 6.0). */
export const IORING_RECV_MULTISHOT = 1 << 1;

export const IORING_CQE_F_BUFFER = 1 << 0;
export const IORING_CQE_F_MORE = 1 << 1;
/** A recv's CQE: the socket had more to read after it (bytes, or its FIN: tcp_inq_hint counts a FIN as one). */
export const IORING_CQE_F_SOCK_NONEMPTY = 1 << 2;
export const IORING_CQE_BUFFER_SHIFT = 16;

export const SQE_SIZE = 64;
export const CQE_SIZE = 16;
export const PARAMS_SIZE = 120;
/** struct io_uring_buf: { u64 addr; u32 len; u16 bid; u16 resv } (the ring's tail is the first entry's resv). */
export const BUF_SIZE = 16;
export const BUF_RING_TAIL_OFFSET = 14;
/** struct io_uring_buf_reg */
export const BUF_REG_SIZE = 40;
/** struct io_uring_getevents_arg */
export const GETEVENTS_ARG_SIZE = 24;
/** struct io_uring_sync_cancel_reg */
export const SYNC_CANCEL_REG_SIZE = 64;

/** Byte offsets inside an SQE. */
export const SQE = {
  opcode: 0,
  flags: 1,
  ioprio: 2,
  fd: 4,
  off: 8,
  /** IORING_OP_URING_CMD: the command (shares `off`). */
  cmdOp: 8,
  addr: 16,
  /** SOCKET_URING_OP_SETSOCKOPT: level and optname (share `addr`). */
  level: 16,
  optname: 20,
  len: 24,
  opFlags: 28,
  userData: 32,
  bufGroup: 40,
  fileIndex: 44,
  /** SOCKET_URING_OP_SETSOCKOPT: the option's length (shares `fileIndex`) and its address. */
  optlen: 44,
  optval: 48,
  /** IORING_OP_SEND with a destination (sendto): its sockaddr in `off` (addr2), its length (shares `fileIndex`). */
  addrLen: 44,
} as const;

/**
 * struct io_uring_recvmsg_out at the start of each buffer a multishot recvmsg fills: { u32 namelen;
 * u32 controllen; u32 payloadlen; u32 flags }, then msg_namelen bytes of name, msg_controllen bytes
 * of control messages (the sizes the SQE's msghdr asked for, whatever was filled), then the payload.
 */
export const RECVMSG_OUT = { nameLength: 0, controlLength: 4, payloadLength: 8, flags: 12, size: 16 } as const;

/** The ring offsets io_uring_setup writes into io_uring_params. */
export interface RingOffsets {
  readonly sqEntries: number;
  readonly cqEntries: number;
  readonly features: number;
  readonly sq: { readonly head: number; readonly tail: number; readonly ringMask: number; readonly ringEntries: number; readonly flags: number; readonly array: number };
  readonly cq: { readonly head: number; readonly tail: number; readonly ringMask: number; readonly ringEntries: number; readonly overflow: number; readonly cqes: number };
}

/** io_uring_params for setup: entries are passed separately; cqEntries with IORING_SETUP_CQSIZE. */
export function writeParams(target: Buffer, flags: number, cqEntries: number): void {
  target.fill(0, 0, PARAMS_SIZE);
  target.writeUInt32LE(cqEntries, 4);
  target.writeUInt32LE(flags >>> 0, 8);
}

export function readParams(source: Buffer): RingOffsets {
  const u32 = (at: number): number => source.readUInt32LE(at);
  // sq_off at 40, cq_off at 80 (after 10 u32 fields).
  return {
    sqEntries: u32(0),
    cqEntries: u32(4),
    features: u32(20),
    sq: { head: u32(40), tail: u32(44), ringMask: u32(48), ringEntries: u32(52), flags: u32(56), array: u32(64) },
    cq: { head: u32(80), tail: u32(84), ringMask: u32(88), ringEntries: u32(92), overflow: u32(96), cqes: u32(100) },
  };
}

/** user_data of our SQEs: an operation kind (high 32 bits) and an id (low 32 bits). */
export function userData(kind: number, id: number): bigint {
  return (BigInt(kind >>> 0) << 32n) | BigInt(id >>> 0);
}

/** Parse a kernel release ("6.18.0-1-amd64") into [major, minor]; undefined when it is not one. */
export function kernelVersion(release: string): readonly [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** Provided buffer rings (5.19), DEFER_TASKRUN (6.1), synchronous cancel (6.0): what the uring engine uses. */
export const IO_URING_MIN_KERNEL = [6, 1] as const;

export type IoUringSupport = { readonly available: true; readonly why: string } | { readonly available: false; readonly why: string };

/**
 * Whether the uring engine can run here, and why (one sentence for the log and doctor).
 * `setupErrno`: the errno name io_uring_setup failed with, or undefined when a probe ring opened
 * (or was not tried because an earlier check already says no).
 */
export function ioUringSupport(input: { readonly release: string; readonly disabledSysctl: number | undefined; readonly setupErrno: string | undefined; readonly root: boolean }): IoUringSupport {
  const version = kernelVersion(input.release);
  const [minMajor, minMinor] = IO_URING_MIN_KERNEL;
  if (!version || version[0] < minMajor || (version[0] === minMajor && version[1] < minMinor)) {
    return { available: false, why: `kernel ${input.release} is older than ${minMajor}.${minMinor} (provided buffer rings, DEFER_TASKRUN, synchronous cancel)` };
  }
  if (input.disabledSysctl === 2) return { available: false, why: 'kernel.io_uring_disabled is 2: io_uring is off for every process (sysctl -w kernel.io_uring_disabled=0 to allow it)' };
  if (input.disabledSysctl === 1 && !input.root) return { available: false, why: 'kernel.io_uring_disabled is 1: only root and the io_uring_group may create rings' };
  if (input.setupErrno === 'EPERM' || input.setupErrno === 'ENOSYS') {
    return { available: false, why: `io_uring_setup failed with ${input.setupErrno}: a seccomp profile refuses io_uring (Docker's default does), or the kernel lacks it` };
  }
  if (input.setupErrno !== undefined) return { available: false, why: `io_uring_setup failed with ${input.setupErrno}` };
  return { available: true, why: `io_uring is available (kernel ${input.release}${input.disabledSysctl !== undefined ? `, kernel.io_uring_disabled=${input.disabledSysctl}` : ''})` };
}

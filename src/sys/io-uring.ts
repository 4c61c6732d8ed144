/**
 * io_uring through koffi, without liburing: io_uring_setup / io_uring_enter / io_uring_register
 * as raw system calls, the rings mmapped and read and written in place from JavaScript
 * (koffi.view gives an ArrayBuffer over the mapping; Atomics order the head and tail updates
 * against the kernel). Queuing an operation is a few stores into the SQ ring, no native call;
 * one io_uring_enter per loop turn submits them all and waits for completions.
 *
 * A provided buffer ring (IORING_REGISTER_PBUF_RING) lends receive buffers to the kernel: a recv
 * takes one only when bytes arrive, so an idle connection holds none.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import koffi from 'koffi';
import { TproxyError } from '../core/errors.js';
import { errnoName } from '../core/errno.js';
import * as U from '../core/net/io-uring.js';
import { encodeSockaddrInto, type Endpoint } from '../core/net/sockaddr.js';

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const MAP_POPULATE = 0x8000;
const PROT_NONE = 0;
/** Room per SQE for a sockaddr (sockaddr_in6 is 28 bytes). */
const SOCKADDR_SLOT = 32;

interface UringCalls {
  setup(nr: number, entries: number, params: Buffer): number;
  enter(nr: number, fd: number, toSubmit: number, minComplete: number, flags: number, arg: Buffer | null, argSize: number): number;
  register(nr: number, fd: number, opcode: number, arg: Buffer | null, nrArgs: number): number;
  mmap(addr: null, length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  munmap(addr: unknown, length: number): number;
  munmapAt(addr: bigint, length: number): number;
  mmapFixed(addr: bigint, length: number, prot: number, flags: number, fd: number, offset: number): bigint;
  close(fd: number): number;
  errno(): number;
}

let calls: UringCalls | undefined;

function load(): UringCalls {
  if (calls) return calls;
  const lib = koffi.load('libc.so.6');
  calls = {
    setup: lib.func('syscall', 'long', ['long', 'uint32_t', 'void *']) as UringCalls['setup'],
    enter: lib.func('syscall', 'long', ['long', 'int', 'uint32_t', 'uint32_t', 'uint32_t', 'void *', 'size_t']) as UringCalls['enter'],
    register: lib.func('syscall', 'long', ['long', 'int', 'uint32_t', 'void *', 'uint32_t']) as UringCalls['register'],
    mmap: lib.func('void *mmap(void *, size_t, int, int, int, int64_t)') as UringCalls['mmap'],
    munmap: lib.func('int munmap(void *, size_t)') as UringCalls['munmap'],
    munmapAt: lib.func('munmap', 'int', ['uintptr_t', 'size_t']) as UringCalls['munmapAt'],
    mmapFixed: lib.func('mmap', 'uintptr_t', ['uintptr_t', 'size_t', 'int', 'int', 'int', 'int64_t']) as UringCalls['mmapFixed'],
    close: lib.func('int close(int)') as UringCalls['close'],
    errno: () => koffi.errno(),
  };
  return calls;
}

function fail(call: string): never {
  const errno = errnoName(load().errno());
  throw new TproxyError(errno === 'EPERM' ? 'ERR_PRIVILEGE' : 'ERR_SYSCALL', `${call} failed with ${errno}`, { call, errno });
}

const MAP_FAILED = -1n;

function mapped(ptr: unknown, call: string): unknown {
  if (ptr === null || koffi.address(ptr) === MAP_FAILED) fail(call);
  return ptr;
}

/**
 * A range of this process's memory that a ring uses: its SQ/CQ rings and SQEs (the io_uring
 * file's pages: each mapping holds a reference to the ring), a provided buffer ring, the buffers
 * (`kernelWrites`: received bytes are copied there).
 */
export interface RingMapping {
  readonly address: bigint;
  readonly length: number;
  readonly kernelWrites: boolean;
}

/** What keeps a ring alive in the kernel: its descriptor and its mappings (releaseAbandonedRing). */
export interface RingResources {
  readonly fd: number;
  readonly mappings: readonly RingMapping[];
}

/** One completion, read in place (valid until the next `next()`). */
export interface Completion {
  /** Operation kind and id from userData(kind, id). */
  kind: number;
  id: number;
  res: number;
  flags: number;
}

export class IoUring {
  readonly fd: number;
  readonly offsets: U.RingOffsets;
  private readonly ringBytes: number;
  private readonly ringPtr: unknown;
  private readonly sqesPtr: unknown;
  private readonly ring: ArrayBuffer;
  private readonly sqes: DataView;
  private readonly sqesU32: Uint32Array;
  private readonly ringU32: Uint32Array;
  private readonly cqes: DataView;
  private readonly sqMask: number;
  private readonly cqMask: number;
  private sqTail: number;
  /** The SQ head and CQ tail (the kernel's) as last read: see free() and next(). */
  private sqHeadSeen: number;
  private cqTailSeen: number;
  private submitted: number;
  private readonly extArg = Buffer.alloc(U.GETEVENTS_ARG_SIZE);
  private readonly timespec = Buffer.alloc(16);
  /** The wait the timespec holds now (ms; -1: none written yet). */
  private timespecMs = -1;
  private readonly syncCancel = Buffer.alloc(U.SYNC_CANCEL_REG_SIZE);
  /** bindEndpoint's sockaddrs, a slot per SQE (allocated at the first). */
  private sockaddrs: { readonly buffer: Buffer; readonly base: number } | undefined;
  readonly completion: Completion = { kind: 0, id: 0, res: 0, flags: 0 };
  /** io_uring_enter calls so far (the bench and tests count them). */
  enters = 0;

  constructor(entries: number) {
    const c = load();
    const params = Buffer.alloc(U.PARAMS_SIZE);
    const flags = U.IORING_SETUP_CQSIZE | U.IORING_SETUP_SUBMIT_ALL | U.IORING_SETUP_COOP_TASKRUN | U.IORING_SETUP_SINGLE_ISSUER | U.IORING_SETUP_DEFER_TASKRUN;
    U.writeParams(params, flags, entries * 4);
    const fd = c.setup(U.SYS_IO_URING_SETUP, entries, params);
    if (fd < 0) fail('io_uring_setup');
    this.fd = fd;
    const o = U.readParams(params);
    this.offsets = o;
    if ((o.features & U.IORING_FEAT_SINGLE_MMAP) === 0 || (o.features & U.IORING_FEAT_EXT_ARG) === 0) {
      c.close(fd);
      throw new TproxyError('ERR_KERNEL_FEATURE', 'io_uring lacks IORING_FEAT_SINGLE_MMAP or IORING_FEAT_EXT_ARG: kernel too old');
    }
    this.ringBytes = Math.max(o.sq.array + o.sqEntries * 4, o.cq.cqes + o.cqEntries * U.CQE_SIZE);
    this.ringPtr = mapped(c.mmap(null, this.ringBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, U.IORING_OFF_SQ_RING), 'mmap(io_uring rings)');
    this.sqesPtr = mapped(c.mmap(null, o.sqEntries * U.SQE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, U.IORING_OFF_SQES), 'mmap(io_uring sqes)');
    this.ring = koffi.view(this.ringPtr, this.ringBytes);
    const sqesBuffer = koffi.view(this.sqesPtr, o.sqEntries * U.SQE_SIZE);
    this.sqes = new DataView(sqesBuffer);
    this.sqesU32 = new Uint32Array(sqesBuffer);
    this.ringU32 = new Uint32Array(this.ring);
    this.cqes = new DataView(this.ring, o.cq.cqes, o.cqEntries * U.CQE_SIZE);
    this.sqMask = this.ringU32[o.sq.ringMask / 4] ?? 0;
    this.cqMask = this.ringU32[o.cq.ringMask / 4] ?? 0;
    this.sqTail = Atomics.load(this.ringU32, o.sq.tail / 4);
    this.sqHeadSeen = Atomics.load(this.ringU32, o.sq.head / 4);
    this.cqTailSeen = Atomics.load(this.ringU32, o.cq.tail / 4);
    this.submitted = this.sqTail;
    // The SQ array maps ring slots to SQEs one to one, once.
    for (let i = 0; i < o.sqEntries; i++) this.ringU32[o.sq.array / 4 + i] = i;
    // The wait's io_uring_getevents_arg: only its timespec changes (no sigmask, no min_wait).
    this.extArg.writeBigUInt64LE(koffi.address(this.timespec), 16);
  }

  /** SQEs queued and not yet submitted. */
  get queued(): number {
    return (this.sqTail - this.submitted) >>> 0;
  }

  private free(): number {
    // The kernel's head only moves on: a head read earlier understates the room, never overstates
    // it. Read again only when that is not enough (an atomic load per SQE was a runtime call each).
    const room = this.offsets.sqEntries - ((this.sqTail - this.sqHeadSeen) >>> 0);
    if (room > 0) return room;
    this.sqHeadSeen = Atomics.load(this.ringU32, this.offsets.sq.head / 4);
    return this.offsets.sqEntries - ((this.sqTail - this.sqHeadSeen) >>> 0);
  }

  /** The next SQE, zeroed, at byte offset returned; submits first when the ring is full. */
  private sqe(opcode: number, fd: number, kind: number, id: number): number {
    if (this.free() === 0) this.submit(0, -1);
    const at = (this.sqTail & this.sqMask) * U.SQE_SIZE;
    // Sixteen word stores, inlined: fill() is a call into the runtime, for each of the ~20 SQEs of a connection.
    const w = this.sqesU32;
    const word = at >>> 2;
    for (let i = 0; i < U.SQE_SIZE / 4; i++) w[word + i] = 0;
    const v = this.sqes;
    v.setUint8(at + U.SQE.opcode, opcode);
    v.setInt32(at + U.SQE.fd, fd, true);
    v.setUint32(at + U.SQE.userData, id >>> 0, true);
    v.setUint32(at + U.SQE.userData + 4, kind >>> 0, true);
    this.sqTail = (this.sqTail + 1) >>> 0;
    return at;
  }

  private publish(): void {
    Atomics.store(this.ringU32, this.offsets.sq.tail / 4, this.sqTail);
  }

  /**
   * Room for `count` SQEs without a submission in between: a linked chain split by a submission
   * would be cut at the split.
   */
  reserve(count: number): void {
    if (this.free() < count) {
      this.sqHeadSeen = Atomics.load(this.ringU32, this.offsets.sq.head / 4);
      if (this.free() < count) this.submit(0, -1);
    }
  }

  /**
   * accept4() on a listener with these flags (res: the new descriptor). With `peer`, the kernel
   * writes the peer's sockaddr there and its length at `peerLength` (a socklen_t holding the room).
   */
  accept(fd: number, flags: number, kind: number, id: number, peer?: { readonly address: bigint | number; readonly length: bigint | number }): void {
    const at = this.sqe(U.IORING_OP_ACCEPT, fd, kind, id);
    this.sqes.setUint32(at + U.SQE.opFlags, flags, true);
    if (!peer) return;
    this.setAddress(at + U.SQE.addr, peer.address);
    this.setAddress(at + U.SQE.off, peer.length);
  }

  /**
   * setsockopt() as SOCKET_URING_OP_SETSOCKOPT (Linux 6.7); the value at `value` is read when it
   * runs. `sqeFlags`: IOSQE_* (IOSQE_CQE_SKIP_SUCCESS, IOSQE_IO_LINK).
   */
  setsockopt(fd: number, level: number, name: number, value: bigint | number, length: number, kind: number, id: number, sqeFlags = 0): void {
    const at = this.sqe(U.IORING_OP_URING_CMD, fd, kind, id);
    const v = this.sqes;
    v.setUint8(at + U.SQE.flags, sqeFlags);
    v.setUint32(at + U.SQE.cmdOp, U.SOCKET_URING_OP_SETSOCKOPT, true);
    v.setUint32(at + U.SQE.level, level, true);
    v.setUint32(at + U.SQE.optname, name, true);
    v.setUint32(at + U.SQE.optlen, length, true);
    this.setAddress(at + U.SQE.optval, value);
  }

  /** bind() to the sockaddr at `address` (Linux 6.11; the kernel copies it when the SQE is prepared). */
  bind(fd: number, address: bigint, length: number, kind: number, id: number, sqeFlags = 0): void {
    const at = this.sqe(U.IORING_OP_BIND, fd, kind, id);
    this.sqes.setUint8(at + U.SQE.flags, sqeFlags);
    this.sqes.setBigUint64(at + U.SQE.addr, address, true);
    this.sqes.setUint32(at + U.SQE.off, length, true);
  }

  /** close() of a descriptor (not a registered one). */
  closeFd(fd: number, kind: number, id: number, sqeFlags = 0): void {
    const at = this.sqe(U.IORING_OP_CLOSE, fd, kind, id);
    this.sqes.setUint8(at + U.SQE.flags, sqeFlags);
  }

  /**
   * bind() to `endpoint` (Linux 6.11), its sockaddr written into memory of the ring's own: a slot
   * per SQE, the one this bind takes. The kernel copies the address when it prepares the SQE, at
   * the submission that consumes it, and an SQE's slot is only written again once the kernel has
   * consumed it (sqe() submits first when the ring is full): no Buffer and no address lookup per
   * bind. A bad endpoint throws before anything is queued.
   */
  bindEndpoint(fd: number, endpoint: Endpoint, kind: number, id: number, sqeFlags = 0): void {
    if (this.free() === 0) this.submit(0, -1);
    const memory = (this.sockaddrs ??= this.sockaddrSlots());
    const slot = this.sqTail & this.sqMask;
    const length = encodeSockaddrInto(endpoint, memory.buffer, slot * SOCKADDR_SLOT);
    const at = this.sqe(U.IORING_OP_BIND, fd, kind, id);
    this.sqes.setUint8(at + U.SQE.flags, sqeFlags);
    this.setPointer(at + U.SQE.addr, memory.base + slot * SOCKADDR_SLOT);
    this.sqes.setUint32(at + U.SQE.off, length, true);
  }

  private sockaddrSlots(): { readonly buffer: Buffer; readonly base: number } {
    const buffer = Buffer.alloc(this.offsets.sqEntries * SOCKADDR_SLOT);
    return { buffer, base: Number(koffi.address(buffer)) };
  }

  /** A user-space address (below 2^53, so exact as a number) into an SQE's 64-bit field, without a BigInt. */
  private setPointer(at: number, address: number): void {
    this.sqes.setUint32(at, address % 0x1_0000_0000, true);
    this.sqes.setUint32(at + 4, Math.floor(address / 0x1_0000_0000), true);
  }

  /** An address into an SQE's 64-bit field: a number without a BigInt (DataView's setBigUint64 is a runtime call). */
  private setAddress(at: number, address: bigint | number): void {
    if (typeof address === 'number') this.setPointer(at, address);
    else this.sqes.setBigUint64(at, address, true);
  }

  /** The opcodes this kernel supports (IORING_REGISTER_PROBE, Linux 5.6). */
  supportedOpcodes(): Set<number> {
    const probe = Buffer.alloc(U.PROBE_HEADER_SIZE + U.PROBE_OPS * U.PROBE_OP_SIZE);
    if (load().register(U.SYS_IO_URING_REGISTER, this.fd, U.IORING_REGISTER_PROBE, probe, U.PROBE_OPS) < 0) fail('io_uring_register(IORING_REGISTER_PROBE)');
    return U.probedOpcodes(probe);
  }

  /** connect() to the sockaddr at `address` (kept alive by the caller until the CQE), linked to a timeout. */
  connect(fd: number, address: bigint | number, length: number, kind: number, id: number, timeout: { readonly at: bigint | number; readonly kind: number } | undefined): void {
    const at = this.sqe(U.IORING_OP_CONNECT, fd, kind, id);
    this.setAddress(at + U.SQE.addr, address);
    this.sqes.setUint32(at + U.SQE.off, length, true);
    if (!timeout) return;
    this.sqes.setUint8(at + U.SQE.flags, U.IOSQE_IO_LINK);
    const t = this.sqe(U.IORING_OP_LINK_TIMEOUT, -1, timeout.kind, id);
    this.setAddress(t + U.SQE.addr, timeout.at);
    this.sqes.setUint32(t + U.SQE.len, 1, true);
  }

  /** recv into a buffer the kernel picks from group `group` when bytes arrive. */
  recvSelect(fd: number, group: number, maxBytes: number, kind: number, id: number): void {
    const at = this.sqe(U.IORING_OP_RECV, fd, kind, id);
    this.sqes.setUint8(at + U.SQE.flags, U.IOSQE_BUFFER_SELECT);
    this.sqes.setUint16(at + U.SQE.bufGroup, group, true);
    this.sqes.setUint32(at + U.SQE.len, maxBytes, true);
  }

  /**
   * send() of `length` bytes at `address` (a number: a pointer from BufferRing.pointer, no BigInt per
   * send); `sqeFlags` IOSQE_IO_LINK: the next SQE runs once it succeeds.
   */
  send(fd: number, address: bigint | number, length: number, msgFlags: number, kind: number, id: number, sqeFlags = 0): void {
    const at = this.sqe(U.IORING_OP_SEND, fd, kind, id);
    this.setAddress(at + U.SQE.addr, address);
    this.sqes.setUint32(at + U.SQE.len, length, true);
    this.sqes.setUint32(at + U.SQE.opFlags, msgFlags, true);
    if (sqeFlags !== 0) this.sqes.setUint8(at + U.SQE.flags, sqeFlags);
  }

  /**
   * Multishot recvmsg (Linux 6.0): every datagram lands in a buffer of group `group`, behind an
   * io_uring_recvmsg_out header and the name and control space the msghdr at `msghdr` asks for
   * (its msg_iovlen 0). One CQE per datagram, with IORING_CQE_F_MORE while it goes on.
   */
  recvmsgMultishot(fd: number, msghdr: bigint, group: number, kind: number, id: number): void {
    const at = this.sqe(U.IORING_OP_RECVMSG, fd, kind, id);
    this.sqes.setUint8(at + U.SQE.flags, U.IOSQE_BUFFER_SELECT);
    this.sqes.setUint16(at + U.SQE.ioprio, U.IORING_RECV_MULTISHOT, true);
    this.sqes.setBigUint64(at + U.SQE.addr, msghdr, true);
    this.sqes.setUint32(at + U.SQE.len, 1, true);
    this.sqes.setUint16(at + U.SQE.bufGroup, group, true);
  }

  /** send() of `length` bytes at `address`, to the sockaddr at `to` (0n: the connected peer). */
  sendTo(fd: number, address: bigint, length: number, msgFlags: number, to: bigint, toLength: number, kind: number, id: number): void {
    const at = this.sqe(U.IORING_OP_SEND, fd, kind, id);
    this.sqes.setBigUint64(at + U.SQE.addr, address, true);
    this.sqes.setUint32(at + U.SQE.len, length, true);
    this.sqes.setUint32(at + U.SQE.opFlags, msgFlags, true);
    if (to === 0n) return;
    this.sqes.setBigUint64(at + U.SQE.off, to, true);
    this.sqes.setUint16(at + U.SQE.addrLen, toLength, true);
  }

  /** Multishot poll (for the wake eventfd). */
  pollMultishot(fd: number, events: number, kind: number, id: number): void {
    const at = this.sqe(U.IORING_OP_POLL_ADD, fd, kind, id);
    this.sqes.setUint32(at + U.SQE.len, U.IORING_POLL_ADD_MULTI, true);
    this.sqes.setUint32(at + U.SQE.opFlags, events, true);
  }

  /** Cancel the operations with this user_data (all of them). */
  cancel(kind: number, id: number, ownKind: number): void {
    const at = this.sqe(U.IORING_OP_ASYNC_CANCEL, -1, ownKind, id);
    this.sqes.setUint32(at + U.SQE.addr, id >>> 0, true);
    this.sqes.setUint32(at + U.SQE.addr + 4, kind >>> 0, true);
    this.sqes.setUint32(at + U.SQE.opFlags, U.IORING_ASYNC_CANCEL_ALL, true);
  }

  /**
   * Cancel every operation on `fd` now (IORING_REGISTER_SYNC_CANCEL). Returns how many were found
   * (0: none was pending). Their CQEs (-ECANCELED) still come. With IORING_SETUP_DEFER_TASKRUN a
   * cancelled poll-driven operation (a multishot receive waiting for data) is only marked: it ends,
   * and drops its reference to the socket, when this thread next runs the ring's task work
   * (runTaskWork, or the next io_uring_enter); until then a close() of the descriptor leaves the
   * socket alive and receiving.
   */
  cancelFdNow(fd: number): number {
    const b = this.syncCancel;
    b.fill(0);
    b.writeInt32LE(fd, 8);
    b.writeUInt32LE(U.IORING_ASYNC_CANCEL_FD | U.IORING_ASYNC_CANCEL_ALL, 12);
    b.writeBigInt64LE(-1n, 16); // no timeout
    b.writeBigInt64LE(-1n, 24);
    // ENOENT: nothing was pending.
    return Math.max(0, load().register(U.SYS_IO_URING_REGISTER, this.fd, U.IORING_REGISTER_SYNC_CANCEL, b, 1));
  }

  /**
   * Run the ring's deferred task work now (io_uring_enter with IORING_ENTER_GETEVENTS, nothing
   * submitted, no wait): cancelled operations complete and release their files, so after
   * cancelFdNow + runTaskWork the ring holds no reference to that socket and close() closes it.
   * Their CQEs wait in the CQ for the next reading.
   */
  runTaskWork(): void {
    this.enters++;
    const n = load().enter(U.SYS_IO_URING_ENTER, this.fd, 0, 0, U.IORING_ENTER_GETEVENTS, null, 0);
    if (n < 0 && !this.transient()) fail('io_uring_enter');
  }

  /**
   * Submit what is queued and wait up to waitMs (-1: no wait, only submit) for at least
   * `minComplete` completions: one system call. Returns the CQEs ready.
   */
  submit(minComplete: number, waitMs: number): number {
    this.publish();
    const toSubmit = this.queued;
    if (waitMs < 0 || minComplete === 0) {
      if (toSubmit > 0 || waitMs >= 0) {
        this.enters++;
        const n = load().enter(U.SYS_IO_URING_ENTER, this.fd, toSubmit, 0, U.IORING_ENTER_GETEVENTS, null, 0);
        if (n < 0 && !this.transient()) fail('io_uring_enter');
        if (n > 0) this.submitted = (this.submitted + n) >>> 0;
      }
      return this.ready();
    }
    const ms = Math.max(0, Math.floor(waitMs));
    if (ms !== this.timespecMs) {
      // Whole numbers well under 2^53 as two 32-bit halves: no BigInt per loop turn.
      this.timespecMs = ms;
      this.timespec.writeUInt32LE(Math.floor(ms / 1000) >>> 0, 0);
      this.timespec.writeUInt32LE(0, 4);
      this.timespec.writeUInt32LE((ms % 1000) * 1_000_000, 8);
      this.timespec.writeUInt32LE(0, 12);
    }
    this.enters++;
    const n = load().enter(U.SYS_IO_URING_ENTER, this.fd, toSubmit, minComplete, U.IORING_ENTER_GETEVENTS | U.IORING_ENTER_EXT_ARG, this.extArg, U.GETEVENTS_ARG_SIZE);
    if (n < 0 && !this.transient()) fail('io_uring_enter');
    // ETIME (the wait ended) and EINTR still submitted what they could: read it back from the head.
    this.submitted = n > 0 ? (this.submitted + n) >>> 0 : this.submittedByKernel();
    return this.ready();
  }

  private submittedByKernel(): number {
    return Atomics.load(this.ringU32, this.offsets.sq.head / 4) >>> 0 === this.sqTail ? this.sqTail : this.submitted;
  }

  private transient(): boolean {
    const e = load().errno();
    return e === 62 /* ETIME */ || e === 4 /* EINTR */ || e === 11 /* EAGAIN */ || e === 16 /* EBUSY */;
  }

  /** CQEs waiting to be read. */
  ready(): number {
    const tail = Atomics.load(this.ringU32, this.offsets.cq.tail / 4);
    const head = this.ringU32[this.offsets.cq.head / 4] ?? 0;
    return (tail - head) >>> 0;
  }

  /** Read the next CQE into `completion` and consume it; false when none is waiting. */
  next(): boolean {
    const headIndex = this.offsets.cq.head / 4;
    const head = this.ringU32[headIndex] ?? 0;
    // CQEs up to a tail read earlier are there for sure (the tail only moves on): read it again only on reaching it.
    if (head === this.cqTailSeen) {
      this.cqTailSeen = Atomics.load(this.ringU32, this.offsets.cq.tail / 4);
      if (head === this.cqTailSeen) return false;
    }
    const at = (head & this.cqMask) * U.CQE_SIZE;
    const c = this.completion;
    c.id = this.cqes.getUint32(at, true);
    c.kind = this.cqes.getUint32(at + 4, true);
    c.res = this.cqes.getInt32(at + 8, true);
    c.flags = this.cqes.getUint32(at + 12, true);
    Atomics.store(this.ringU32, headIndex, (head + 1) >>> 0);
    return true;
  }

  /** A provided buffer ring of `count` buffers of `size` bytes as group `group`. */
  bufferRing(group: number, count: number, size: number): BufferRing {
    return new BufferRing(this, group, count, size);
  }

  /** @internal */
  registerRaw(opcode: number, arg: Buffer, nrArgs: number): number {
    return load().register(U.SYS_IO_URING_REGISTER, this.fd, opcode, arg, nrArgs);
  }

  /** Its descriptor and its rings' mappings (not a buffer ring's: BufferRing.mappings). */
  resources(): RingResources {
    return {
      fd: this.fd,
      mappings: [
        { address: koffi.address(this.ringPtr), length: this.ringBytes, kernelWrites: false },
        { address: koffi.address(this.sqesPtr), length: this.offsets.sqEntries * U.SQE_SIZE, kernelWrites: false },
      ],
    };
  }

  close(): void {
    const c = load();
    c.munmap(this.sqesPtr, this.offsets.sqEntries * U.SQE_SIZE);
    c.munmap(this.ringPtr, this.ringBytes);
    c.close(this.fd);
  }
}

/**
 * Receive buffers lent to the kernel: a recv with IOSQE_BUFFER_SELECT takes one when bytes arrive
 * (its id in the CQE flags); we give it back once its bytes were sent on.
 */
export class BufferRing {
  readonly base: bigint;
  private readonly baseNumber: number;
  private readonly ringPtr: unknown;
  private readonly bufsPtr: unknown;
  private readonly ring: DataView;
  private readonly tail16: Uint16Array;
  private tail = 0;
  private readonly mask: number;
  private lent = 0;

  constructor(
    private readonly uring: IoUring,
    readonly group: number,
    readonly count: number,
    readonly size: number,
  ) {
    if ((count & (count - 1)) !== 0) throw new TproxyError('ERR_INVALID_ARGUMENT', `buffer ring size ${count} is not a power of two`);
    const c = load();
    this.ringPtr = mapped(c.mmap(null, count * U.BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0), 'mmap(buffer ring)');
    this.bufsPtr = mapped(c.mmap(null, count * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 'mmap(buffers)');
    this.base = koffi.address(this.bufsPtr);
    this.baseNumber = Number(this.base);
    const view = koffi.view(this.ringPtr, count * U.BUF_SIZE);
    this.ring = new DataView(view);
    this.tail16 = new Uint16Array(view);
    this.mask = count - 1;
    const reg = Buffer.alloc(U.BUF_REG_SIZE);
    reg.writeBigUInt64LE(koffi.address(this.ringPtr), 0);
    reg.writeUInt32LE(count, 8);
    reg.writeUInt16LE(group, 12);
    if (uring.registerRaw(U.IORING_REGISTER_PBUF_RING, reg, 1) !== 0) fail('io_uring_register(IORING_REGISTER_PBUF_RING)');
    for (let bid = 0; bid < count; bid++) this.put(bid);
    this.lent = count;
    this.publish();
    this.lent = 0;
  }

  /** Buffers the kernel has handed to us (taken by a recv, not yet given back). */
  get inUse(): number {
    return this.lent;
  }

  /** Every buffer's bytes, in place (buffer `bid` at bid * size). */
  memory(): Buffer {
    return Buffer.from(koffi.view(this.bufsPtr, this.count * this.size));
  }

  address(bid: number): bigint {
    return this.base + BigInt(bid * this.size);
  }

  /** The same address as a number (exact: user-space addresses are below 2^53), for IoUring.send without a BigInt. */
  pointer(bid: number): number {
    return this.baseNumber + bid * this.size;
  }

  /** The kernel handed us buffer `bid` (a recv CQE). */
  taken(): void {
    this.lent++;
  }

  private put(bid: number): void {
    const at = (this.tail & this.mask) * U.BUF_SIZE;
    const address = this.pointer(bid);
    this.ring.setUint32(at, address % 0x1_0000_0000, true);
    this.ring.setUint32(at + 4, Math.floor(address / 0x1_0000_0000), true);
    this.ring.setUint32(at + 8, this.size, true);
    this.ring.setUint16(at + 12, bid, true);
    this.tail = (this.tail + 1) & 0xffff;
  }

  private publish(): void {
    Atomics.store(this.tail16, U.BUF_RING_TAIL_OFFSET / 2, this.tail);
  }

  /** Give buffer `bid` back to the kernel. */
  giveBack(bid: number): void {
    this.put(bid);
    this.lent--;
    this.publish();
  }

  /** The ring of buffer entries and the buffers. */
  mappings(): RingMapping[] {
    return [
      { address: koffi.address(this.ringPtr), length: this.count * U.BUF_SIZE, kernelWrites: false },
      { address: this.base, length: this.count * this.size, kernelWrites: true },
    ];
  }

  close(): void {
    const c = load();
    c.munmap(this.bufsPtr, this.count * this.size);
    c.munmap(this.ringPtr, this.count * U.BUF_SIZE);
  }
}

/**
 * Tear down a ring whose thread is gone without closing it (a UDP loop terminated after the stop
 * timeout), from another thread of the process: its mappings are removed and its descriptor
 * closed, so the kernel frees the ring (asynchronously) and, with it, its requests and their
 * references to sockets. Nothing else may use the ring (IORING_SETUP_SINGLE_ISSUER refuses
 * another thread's io_uring_enter and io_uring_register anyway). The buffers the kernel copies
 * received bytes into are not unmapped but replaced by an inaccessible reservation (their pages
 * freed): until the kernel has ended the ring's receives their addresses must not be given to any
 * other allocation of the process. (With IORING_SETUP_DEFER_TASKRUN a receive copies only in its
 * submitter thread's task work, so none should, but a stray write then faults instead of
 * corrupting memory.) Returns the failures, as "call: errno" (empty: all done).
 */
export function releaseAbandonedRing(ring: RingResources): string[] {
  const c = load();
  const failures: string[] = [];
  for (const m of ring.mappings) {
    if (m.kernelWrites) {
      const at = c.mmapFixed(m.address, m.length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
      if (BigInt(at) !== m.address) failures.push(`mmap(MAP_FIXED, PROT_NONE): ${errnoName(c.errno())}`);
    } else if (c.munmapAt(m.address, m.length) !== 0) failures.push(`munmap: ${errnoName(c.errno())}`);
  }
  if (c.close(ring.fd) !== 0) failures.push(`close(io_uring): ${errnoName(c.errno())}`);
  return failures;
}

/** kernel.io_uring_disabled, or undefined when the kernel has no such sysctl (before 6.6). */
export function readIoUringDisabled(path = '/proc/sys/kernel/io_uring_disabled'): number | undefined {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** Open and close a small ring: undefined when that works, else the errno name it failed with. */
export function probeIoUringSetup(): string | undefined {
  try {
    new IoUring(4).close();
    return undefined;
  } catch (error) {
    return error instanceof TproxyError ? String(error.details.errno ?? error.code) : (error as Error).message;
  }
}

let support: U.IoUringSupport | undefined;

/** Whether the uring engine can run on this host, probed once per process. */
export function hostIoUringSupport(): U.IoUringSupport {
  if (support) return support;
  const input = { release: release(), disabledSysctl: readIoUringDisabled(), setupErrno: undefined as string | undefined, root: process.geteuid?.() === 0 };
  const first = U.ioUringSupport(input);
  support = first.available ? U.ioUringSupport({ ...input, setupErrno: probeIoUringSetup() }) : first;
  return support;
}

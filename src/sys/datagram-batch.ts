/**
 * recvmmsg / sendmmsg over a fixed set of slots, allocated once: one system call moves up to
 * `capacity` datagrams. Hot path: errors come back as negative errno numbers, never as throws.
 *
 * A batch received from one socket can be sent on to another from the same slots (no copy):
 * connected (no name), to one pinned sockaddr, or each slot back to its own source.
 */
import { decodeControlMessages, originalDestination, ORIGDSTADDR_CONTROL_SPACE } from '../core/net/cmsg.js';
import { dscpOfControlMessages } from '../core/net/ip-header.js';
import * as C from '../core/net/constants.js';
import { MMSGHDR_LENGTH_OFFSET, MMSGHDR_SIZE, resetMmsghdrForReceive, setMmsghdrName, writeMmsghdr } from '../core/net/mmsghdr.js';
import { IOVEC_SIZE, MSGHDR_OFFSET, writeIovec } from '../core/net/msghdr.js';
import { decodeSockaddr, encodeSockaddr, sockaddrKey, SOCKADDR_IN6_SIZE, type Endpoint } from '../core/net/sockaddr.js';
import type { Libc } from './libc.js';

const NAME_STRIDE = 32;

/** A sockaddr kept alive with its C address, to send many datagrams to. */
export interface PinnedSockaddr {
  readonly sockaddr: Buffer;
  readonly address: bigint;
}

/** null: connected socket; 'source': each slot back to the source it was received from. */
export type SendTarget = null | 'source' | PinnedSockaddr;

export class DatagramBatch {
  readonly capacity: number;
  readonly slotBytes: number;
  /** Bytes in each slot: set by receive(), or by the caller before send(). */
  readonly lengths: Int32Array;
  private readonly data: Buffer;
  private readonly nameLengths: Int32Array;
  private readonly flags: Int32Array;
  private readonly names: Buffer;
  private readonly controls: Buffer;
  private readonly controlLengths: Int32Array;
  private readonly recvIov: Buffer;
  private readonly recvHdrs: Buffer;
  private readonly sendIov: Buffer;
  private readonly sendHdrs: Buffer;
  private readonly namesAddress: bigint;
  private readonly nameAddresses: bigint[];
  /** Entries the last receive filled: the only ones whose lengths the kernel overwrote. */
  private filled: number;

  constructor(
    private readonly libc: Libc,
    capacity: number,
    slotBytes: number,
  ) {
    this.capacity = capacity;
    this.slotBytes = slotBytes;
    this.lengths = new Int32Array(capacity);
    this.nameLengths = new Int32Array(capacity);
    this.controlLengths = new Int32Array(capacity);
    this.flags = new Int32Array(capacity);
    this.data = Buffer.alloc(capacity * slotBytes);
    this.names = Buffer.alloc(capacity * NAME_STRIDE);
    this.controls = Buffer.alloc(capacity * ORIGDSTADDR_CONTROL_SPACE);
    this.recvIov = Buffer.alloc(capacity * IOVEC_SIZE);
    this.recvHdrs = Buffer.alloc(capacity * MMSGHDR_SIZE);
    this.sendIov = Buffer.alloc(capacity * IOVEC_SIZE);
    this.sendHdrs = Buffer.alloc(capacity * MMSGHDR_SIZE);
    const dataAddress = libc.address(this.data);
    this.namesAddress = libc.address(this.names);
    const controlsAddress = libc.address(this.controls);
    const recvIovAddress = libc.address(this.recvIov);
    const sendIovAddress = libc.address(this.sendIov);
    this.nameAddresses = Array.from({ length: capacity }, (_, i) => this.namesAddress + BigInt(i * NAME_STRIDE));
    this.filled = 0;
    for (let i = 0; i < capacity; i++) {
      const slot = dataAddress + BigInt(i * slotBytes);
      writeIovec(this.recvIov, i, slot, slotBytes);
      writeIovec(this.sendIov, i, slot, 0);
      writeMmsghdr(this.recvHdrs, i, {
        nameAddress: this.namesAddress + BigInt(i * NAME_STRIDE),
        nameLength: NAME_STRIDE,
        iovAddress: recvIovAddress + BigInt(i * IOVEC_SIZE),
        iovCount: 1,
        controlAddress: controlsAddress + BigInt(i * ORIGDSTADDR_CONTROL_SPACE),
        controlLength: ORIGDSTADDR_CONTROL_SPACE,
      });
      writeMmsghdr(this.sendHdrs, i, { nameAddress: 0n, nameLength: 0, iovAddress: sendIovAddress + BigInt(i * IOVEC_SIZE), iovCount: 1, controlAddress: 0n, controlLength: 0 });
    }
  }

  /** Encode `endpoint` once and keep it with its C address, for send(). */
  pin(endpoint: Endpoint): PinnedSockaddr {
    const sockaddr = encodeSockaddr(endpoint);
    return { sockaddr, address: this.libc.address(sockaddr) };
  }

  /** The bytes of slot i (a view: valid until the next receive). */
  slot(i: number): Buffer {
    const at = i * this.slotBytes;
    return this.data.subarray(at, at + (this.lengths[i] ?? 0));
  }

  /** A writable view of the whole of slot i, to fill before send(). */
  slotSpace(i: number): Buffer {
    return this.data.subarray(i * this.slotBytes, (i + 1) * this.slotBytes);
  }

  /** Receive up to `max` datagrams: the count (0 when none is waiting), or -errno. */
  receive(fd: number, max: number = this.capacity): number {
    const count = Math.min(max, this.capacity);
    for (let i = 0; i < this.filled; i++) resetMmsghdrForReceive(this.recvHdrs, i, NAME_STRIDE, ORIGDSTADDR_CONTROL_SPACE);
    const n = this.libc.recvmmsg(fd, this.recvHdrs, count, C.MSG_DONTWAIT, null);
    if (n < 0) {
      this.filled = 0;
      const errno = this.libc.errno();
      return errno === C.EAGAIN ? 0 : -errno;
    }
    this.filled = n;
    for (let i = 0; i < n; i++) {
      const at = i * MMSGHDR_SIZE;
      this.lengths[i] = Math.min(this.recvHdrs.readUInt32LE(at + MMSGHDR_LENGTH_OFFSET), this.slotBytes);
      this.nameLengths[i] = this.recvHdrs.readUInt32LE(at + MSGHDR_OFFSET.nameLength);
      this.controlLengths[i] = this.recvHdrs.readUInt32LE(at + MSGHDR_OFFSET.controlLength);
      this.flags[i] = this.recvHdrs.readInt32LE(at + MSGHDR_OFFSET.flags);
    }
    return n;
  }

  /** The datagram in slot i was longer than a slot (MSG_TRUNC). */
  truncated(i: number): boolean {
    return ((this.flags[i] ?? 0) & C.MSG_TRUNC) !== 0;
  }

  private name(i: number): Buffer {
    return this.names.subarray(i * NAME_STRIDE, i * NAME_STRIDE + (this.nameLengths[i] ?? 0));
  }

  /** sockaddrKey of the source of slot i. */
  sourceKey(i: number): string {
    return sockaddrKey(this.name(i));
  }

  source(i: number): Endpoint {
    return decodeSockaddr(this.name(i), this.nameLengths[i] ?? 0);
  }

  /** The source of slot i is the endpoint encoded in `sockaddr` (same port and address bytes). */
  sourceIs(i: number, sockaddr: Buffer): boolean {
    const at = i * NAME_STRIDE;
    const n = this.names;
    if (n[at] !== sockaddr[0] || n[at + 2] !== sockaddr[2] || n[at + 3] !== sockaddr[3]) return false;
    const [from, to] = sockaddr.length === SOCKADDR_IN6_SIZE ? [8, 24] : [4, 8];
    return n.compare(sockaddr, from, to, at + from, at + to) === 0;
  }

  /** IP_ORIGDSTADDR / IPV6_ORIGDSTADDR of slot i, when the socket asked for it. */
  originalDestination(i: number): Endpoint | undefined {
    const length = this.controlLengths[i] ?? 0;
    if (length === 0) return undefined;
    const at = i * ORIGDSTADDR_CONTROL_SPACE;
    return originalDestination(decodeControlMessages(this.controls.subarray(at, at + length), length));
  }

  /** The DSCP slot i arrived with (IP_TOS / IPV6_TCLASS), when the socket asked for it. */
  dscp(i: number): number | undefined {
    const length = this.controlLengths[i] ?? 0;
    if (length === 0) return undefined;
    const at = i * ORIGDSTADDR_CONTROL_SPACE;
    return dscpOfControlMessages(decodeControlMessages(this.controls.subarray(at, at + length), length));
  }

  /**
   * Send slots [from, from + count) with their lengths: the number sent (the rest would block or
   * failed), or -errno when not even the first could be sent.
   */
  send(fd: number, from: number, count: number, to: SendTarget): number {
    for (let i = from; i < from + count; i++) {
      this.sendIov.writeUInt32LE(this.lengths[i] ?? 0, i * IOVEC_SIZE + 8);
      if (to === null) setMmsghdrName(this.sendHdrs, i, 0n, 0);
      else if (to === 'source') setMmsghdrName(this.sendHdrs, i, this.nameAddresses[i] ?? 0n, this.nameLengths[i] ?? 0);
      else setMmsghdrName(this.sendHdrs, i, to.address, to.sockaddr.length);
    }
    let sent = 0;
    while (sent < count) {
      const start = (from + sent) * MMSGHDR_SIZE;
      const n = this.libc.sendmmsg(fd, this.sendHdrs.subarray(start), count - sent, C.MSG_DONTWAIT);
      if (n < 0) return sent > 0 ? sent : -this.libc.errno();
      if (n === 0) break;
      sent += n;
    }
    return sent;
  }
}

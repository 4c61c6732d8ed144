/**
 * Typed socket calls for what Node lacks: transparent sockets, marks, original destinations.
 * Every failure raises TproxyError with the call, the errno name and advice a user can act on.
 *
 * Socket calls that may fail in a way a user must hear about go through here. The hot loops call
 * the injected Libc directly instead, because there an error is an ordinary outcome handled per
 * call (EAGAIN, a reset peer) and a thrown TproxyError plus its message per call would cost more
 * than the call: sys/epoll.ts, sys/datagram-batch.ts and sys/raw-udp.ts (the UDP loop), and the
 * splice engine's accept, sniff, handshake and byte pump (dataplane/tcp/splice/engine.ts and
 * pump.ts; pipes in pipe-pool.ts). Each takes its Libc as a parameter, so tests can fake it.
 */
import { TproxyError, type TproxyErrorCode } from '../core/errors.js';
import { errnoAdvice, errnoName } from '../core/errno.js';
import * as C from '../core/net/constants.js';
import { decodeSockaddr, encodeSockaddr, SOCKADDR_STORAGE_SIZE, type Endpoint } from '../core/net/sockaddr.js';
import { decodeControlMessages, originalDestination, ORIGDSTADDR_CONTROL_SPACE } from '../core/net/cmsg.js';
import { dscpOfSavedSyn } from '../core/net/ip-header.js';
import { MSGHDR_SIZE, IOVEC_SIZE, writeMsghdr, writeIovec, readMsghdrResult } from '../core/net/msghdr.js';
import { DatagramBatch } from './datagram-batch.js';
import { Epoll } from './epoll.js';
import { EpollDatagramIo, type DatagramIo, type UdpEngineKind } from './datagram-io.js';
import { UringDatagramIo } from './uring-datagram-io.js';
import { loadLibc, type Libc } from './libc.js';
import { RawUdpSender } from './raw-udp.js';

export interface SocketOptions {
  readonly family: C.Family;
  readonly transport: C.Transport;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT: accept TPROXY traffic, bind foreign addresses. CAP_NET_ADMIN. */
  readonly transparent?: boolean;
  /** SO_MARK on every packet the socket sends. CAP_NET_ADMIN. */
  readonly mark?: number;
  readonly reuseAddress?: boolean;
  readonly reusePort?: boolean;
  /** IP_FREEBIND / IPV6_FREEBIND: bind an address not (yet) configured on the host. */
  readonly freebind?: boolean;
  /** IP_BIND_ADDRESS_NO_PORT: bind(addr, 0) defers the port choice to connect(). */
  readonly bindAddressNoPort?: boolean;
  /** IPV6_V6ONLY; defaults to true for IPv6 so v4 and v6 listeners never overlap. */
  readonly v6Only?: boolean;
  /** IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR: deliver each datagram's original destination. */
  readonly recvOriginalDestination?: boolean;
  /**
   * Receive buffer in bytes (SO_RCVBUFFORCE: beyond net.core.rmem_max, needs CAP_NET_ADMIN; the
   * kernel doubles it for its bookkeeping).
   */
  readonly receiveBufferBytes?: number;
  /** IP_TOS / IPV6_TCLASS: this DSCP (0-63) on every packet the socket sends (accepted sockets inherit it). */
  readonly dscp?: number;
  /** IP_TTL / IPV6_UNICAST_HOPS of every packet the socket sends (accepted sockets inherit it). */
  readonly ttl?: number;
  /** TCP_SAVE_SYN on a listener: each accepted socket keeps its SYN's headers for savedSynDscp(). */
  readonly saveSyn?: boolean;
  /** IP_RECVTOS / IPV6_RECVTCLASS: deliver each datagram's DSCP (ReceivedDatagram / DatagramBatch.dscp). */
  readonly recvDscp?: boolean;
  /** O_NONBLOCK (default true). */
  readonly nonBlocking?: boolean;
}

export interface ReceivedDatagram {
  /** Bytes received (the datagram is truncated to the buffer when `truncated`). */
  readonly length: number;
  readonly truncated: boolean;
  readonly source: Endpoint;
  /** From IP_ORIGDSTADDR, when the socket asked for it. */
  readonly originalDestination: Endpoint | undefined;
}

const OPTION_NAMES: Readonly<Record<string, string>> = {
  [`${C.SOL_SOCKET}:${C.SO_REUSEADDR}`]: 'SO_REUSEADDR',
  [`${C.SOL_SOCKET}:${C.SO_REUSEPORT}`]: 'SO_REUSEPORT',
  [`${C.SOL_SOCKET}:${C.SO_MARK}`]: 'SO_MARK',
  [`${C.SOL_SOCKET}:${C.SO_RCVBUF}`]: 'SO_RCVBUF',
  [`${C.SOL_SOCKET}:${C.SO_RCVBUFFORCE}`]: 'SO_RCVBUFFORCE',
  [`${C.SOL_SOCKET}:${C.SO_ATTACH_FILTER}`]: 'SO_ATTACH_FILTER',
  [`${C.SOL_IP}:${C.IP_TRANSPARENT}`]: 'IP_TRANSPARENT',
  [`${C.SOL_IP}:${C.IP_TOS}`]: 'IP_TOS',
  [`${C.SOL_IP}:${C.IP_TTL}`]: 'IP_TTL',
  [`${C.SOL_IP}:${C.IP_RECVTOS}`]: 'IP_RECVTOS',
  [`${C.SOL_IPV6}:${C.IPV6_TCLASS}`]: 'IPV6_TCLASS',
  [`${C.SOL_IPV6}:${C.IPV6_UNICAST_HOPS}`]: 'IPV6_UNICAST_HOPS',
  [`${C.SOL_IPV6}:${C.IPV6_RECVTCLASS}`]: 'IPV6_RECVTCLASS',
  [`${C.IPPROTO_TCP}:${C.TCP_SAVE_SYN}`]: 'TCP_SAVE_SYN',
  [`${C.IPPROTO_TCP}:${C.TCP_SAVED_SYN}`]: 'TCP_SAVED_SYN',
  [`${C.SOL_SOCKET}:${C.SO_LINGER}`]: 'SO_LINGER',
  [`${C.SOL_IP}:${C.IP_FREEBIND}`]: 'IP_FREEBIND',
  [`${C.SOL_IP}:${C.IP_RECVORIGDSTADDR}`]: 'IP_RECVORIGDSTADDR',
  [`${C.SOL_IP}:${C.IP_BIND_ADDRESS_NO_PORT}`]: 'IP_BIND_ADDRESS_NO_PORT',
  [`${C.SOL_IPV6}:${C.IPV6_TRANSPARENT}`]: 'IPV6_TRANSPARENT',
  [`${C.SOL_IPV6}:${C.IPV6_FREEBIND}`]: 'IPV6_FREEBIND',
  [`${C.SOL_IPV6}:${C.IPV6_RECVORIGDSTADDR}`]: 'IPV6_RECVORIGDSTADDR',
  [`${C.SOL_IPV6}:${C.IPV6_V6ONLY}`]: 'IPV6_V6ONLY',
};

function codeFor(errno: string): TproxyErrorCode {
  if (errno === 'EPERM' || errno === 'EACCES') return 'ERR_PRIVILEGE';
  if (errno === 'EADDRINUSE') return 'ERR_ADDRESS_IN_USE';
  if (errno === 'ENOPROTOOPT') return 'ERR_KERNEL_FEATURE';
  return 'ERR_SYSCALL';
}

/** Socket calls bound to one libc (one per thread). */
export class SocketApi {
  private readonly libc: Libc;
  private readonly u32 = Buffer.alloc(4);
  private readonly peekByte = Buffer.alloc(1);

  constructor(libc: Libc = loadLibc()) {
    this.libc = libc;
  }

  /** Raise the error for a failed `call`, with errno read right now. */
  fail(call: string, context: Record<string, unknown> = {}): never {
    const errnoNumber = this.libc.errno();
    const errno = errnoName(errnoNumber);
    const advice = errnoAdvice(call, errno);
    throw new TproxyError(codeFor(errno), `${call} failed with ${errno}${advice ? `: ${advice}` : ''}`, { call, errno, errnoNumber, ...context });
  }

  /** socket() plus every option of `options`, in the order the kernel needs them (before bind). */
  open(options: SocketOptions): number {
    const domain = options.family === 4 ? C.AF_INET : C.AF_INET6;
    const type = (options.transport === 'tcp' ? C.SOCK_STREAM : C.SOCK_DGRAM) | C.SOCK_CLOEXEC | (options.nonBlocking === false ? 0 : C.SOCK_NONBLOCK);
    const fd = this.libc.socket(domain, type, 0);
    if (fd < 0) this.fail(`socket(${options.family === 4 ? 'AF_INET' : 'AF_INET6'}, ${options.transport === 'tcp' ? 'SOCK_STREAM' : 'SOCK_DGRAM'})`);
    try {
      const ip = options.family === 4;
      if (options.family === 6) this.setInt(fd, C.SOL_IPV6, C.IPV6_V6ONLY, options.v6Only === false ? 0 : 1);
      if (options.reuseAddress) this.setInt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1);
      if (options.reusePort) this.setInt(fd, C.SOL_SOCKET, C.SO_REUSEPORT, 1);
      if (options.transparent) this.setInt(fd, ip ? C.SOL_IP : C.SOL_IPV6, ip ? C.IP_TRANSPARENT : C.IPV6_TRANSPARENT, 1);
      if (options.freebind) this.setInt(fd, ip ? C.SOL_IP : C.SOL_IPV6, ip ? C.IP_FREEBIND : C.IPV6_FREEBIND, 1);
      if (options.mark !== undefined) this.setInt(fd, C.SOL_SOCKET, C.SO_MARK, options.mark);
      if (options.receiveBufferBytes !== undefined) this.setInt(fd, C.SOL_SOCKET, C.SO_RCVBUFFORCE, options.receiveBufferBytes);
      if (options.bindAddressNoPort) this.setInt(fd, C.SOL_IP, C.IP_BIND_ADDRESS_NO_PORT, 1);
      if (options.recvOriginalDestination) {
        this.setInt(fd, ip ? C.SOL_IP : C.SOL_IPV6, ip ? C.IP_RECVORIGDSTADDR : C.IPV6_RECVORIGDSTADDR, 1);
      }
      if (options.dscp !== undefined) this.setDscp(fd, options.family, options.dscp);
      if (options.ttl !== undefined) this.setInt(fd, ip ? C.SOL_IP : C.SOL_IPV6, ip ? C.IP_TTL : C.IPV6_UNICAST_HOPS, options.ttl);
      if (options.saveSyn) this.setInt(fd, C.IPPROTO_TCP, C.TCP_SAVE_SYN, 1);
      if (options.recvDscp) this.setInt(fd, ip ? C.SOL_IP : C.SOL_IPV6, ip ? C.IP_RECVTOS : C.IPV6_RECVTCLASS, 1);
    } catch (error) {
      this.libc.close(fd);
      throw error;
    }
    return fd;
  }

  setInt(fd: number, level: number, name: number, value: number): void {
    this.u32.writeUInt32LE(value >>> 0, 0);
    if (this.libc.setsockopt(fd, level, name, this.u32, 4) !== 0) {
      this.fail(`setsockopt(${OPTION_NAMES[`${level}:${name}`] ?? `${level}:${name}`})`, { fd, value });
    }
  }

  setBytes(fd: number, level: number, name: number, value: Buffer): void {
    if (this.libc.setsockopt(fd, level, name, value, value.length) !== 0) {
      this.fail(`setsockopt(${OPTION_NAMES[`${level}:${name}`] ?? `${level}:${name}`})`, { fd });
    }
  }

  /** IP_TOS / IPV6_TCLASS from a DSCP (the ECN bits stay the kernel's for TCP). */
  setDscp(fd: number, family: C.Family, dscp: number): void {
    if (family === 4) this.setInt(fd, C.SOL_IP, C.IP_TOS, dscp << 2);
    else this.setInt(fd, C.SOL_IPV6, C.IPV6_TCLASS, dscp << 2);
  }

  /**
   * The DSCP of an accepted socket's SYN (its listener had TCP_SAVE_SYN): read once, the kernel
   * frees the headers then. Undefined when none are kept (read already, or the listener lacked it).
   */
  savedSynDscp(fd: number): number | undefined {
    const headers = Buffer.alloc(SAVED_SYN_BYTES);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(headers.length, 0);
    if (this.libc.getsockopt(fd, C.IPPROTO_TCP, C.TCP_SAVED_SYN, headers, length) !== 0) this.fail('getsockopt(TCP_SAVED_SYN)', { fd });
    return dscpOfSavedSyn(headers, length.readUInt32LE(0));
  }

  /**
   * SO_LINGER {1, 0} (on) or {0, 0} (off). On: close() resets the connection instead of sending a
   * FIN, and so does the kernel when the process dies holding the socket.
   */
  setResetOnClose(fd: number, on: boolean): void {
    const linger = on ? LINGER_ON : LINGER_OFF;
    if (this.libc.setsockopt(fd, C.SOL_SOCKET, C.SO_LINGER, linger, linger.length) !== 0) this.fail('setsockopt(SO_LINGER)', { fd, on });
  }

  /**
   * Close with a reset instead of a FIN: SO_LINGER {1, 0}, then close(). Never throws (the engines'
   * way to end a flow or refuse a connection; the peer may be gone already).
   */
  resetClose(fd: number): void {
    this.libc.setsockopt(fd, C.SOL_SOCKET, C.SO_LINGER, LINGER_ON, LINGER_ON.length);
    this.libc.close(fd);
  }

  getInt(fd: number, level: number, name: number): number {
    const value = Buffer.alloc(4);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(4, 0);
    if (this.libc.getsockopt(fd, level, name, value, length) !== 0) {
      this.fail(`getsockopt(${OPTION_NAMES[`${level}:${name}`] ?? `${level}:${name}`})`, { fd });
    }
    return value.readUInt32LE(0);
  }

  bind(fd: number, endpoint: Endpoint): void {
    const sa = encodeSockaddr(endpoint);
    if (this.libc.bind(fd, sa, sa.length) !== 0) this.fail(`bind(${formatForCall(endpoint)})`, { fd, address: endpoint.address, port: endpoint.port });
  }

  listen(fd: number, backlog: number): void {
    if (this.libc.listen(fd, backlog) !== 0) this.fail('listen', { fd, backlog });
  }

  /** connect(); on a non-blocking socket EINPROGRESS is not an error (wait for the socket to become writable). */
  connect(fd: number, endpoint: Endpoint): 'connected' | 'in-progress' {
    const sa = encodeSockaddr(endpoint);
    if (this.libc.connect(fd, sa, sa.length) === 0) return 'connected';
    if (errnoName(this.libc.errno()) === 'EINPROGRESS') return 'in-progress';
    return this.fail(`connect(${formatForCall(endpoint)})`, { fd, address: endpoint.address, port: endpoint.port });
  }

  localEndpoint(fd: number): Endpoint {
    return this.nameOf(fd, 'getsockname');
  }

  remoteEndpoint(fd: number): Endpoint {
    return this.nameOf(fd, 'getpeername');
  }

  private nameOf(fd: number, call: 'getsockname' | 'getpeername'): Endpoint {
    const sa = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(sa.length, 0);
    if (this.libc[call](fd, sa, length) !== 0) this.fail(call, { fd });
    return decodeSockaddr(sa, length.readUInt32LE(0));
  }

  /** send() on a connected socket; null when it would block. */
  send(fd: number, data: Buffer, length: number = data.length): number | null {
    const n = this.libc.send(fd, data, length, C.MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errnoName(this.libc.errno()) === 'EAGAIN') return null;
    return this.fail('send', { fd, length });
  }

  /**
   * One datagram, for hot paths: to `to` (an encoded sockaddr) or, with null, to the connected peer.
   * Bytes sent, or -errno (EAGAIN included): never throws.
   */
  sendDatagram(fd: number, data: Buffer, length: number, to: Buffer | null): number {
    const n = this.libc.sendto(fd, data, length, C.MSG_DONTWAIT, to, to ? to.length : 0);
    return n >= 0 ? n : -this.libc.errno();
  }

  shutdown(fd: number, how: number): void {
    if (this.libc.shutdown(fd, how) !== 0) this.fail('shutdown', { fd, how });
  }

  close(fd: number): void {
    if (this.libc.close(fd) !== 0) this.fail('close', { fd });
  }

  /** dup(): a second descriptor for the same socket (lets a listener be paused without closing it). */
  dup(fd: number): number {
    const copy = this.libc.dup(fd);
    if (copy < 0) this.fail('dup', { fd });
    return copy;
  }

  /** The effective uid of this process. */
  geteuid(): number {
    return this.libc.geteuid();
  }

  /** A reusable receiver for recvmsg with source address and original destination. */
  receiver(maxDatagramBytes: number): DatagramReceiver {
    return new DatagramReceiver(this, this.libc, maxDatagramBytes);
  }

  /** recv() on a connected socket into `data`; null when nothing is waiting. */
  recv(fd: number, data: Buffer): number | null {
    const n = this.libc.recv(fd, data, data.length, C.MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errnoName(this.libc.errno()) === 'EAGAIN') return null;
    return this.fail('recv', { fd });
  }

  /** recv(MSG_PEEK) on a connected socket: the bytes stay queued; null when nothing is waiting. */
  peek(fd: number, data: Buffer): number | null {
    const n = this.libc.recv(fd, data, data.length, C.MSG_PEEK | C.MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errnoName(this.libc.errno()) === 'EAGAIN') return null;
    return this.fail('recv(MSG_PEEK)', { fd });
  }

  /**
   * Whether a datagram waits in the socket's receive queue (recv with MSG_PEEK into one byte:
   * nothing is taken). An error other than EAGAIN counts as waiting: the next read reports it.
   */
  hasQueuedDatagram(fd: number): boolean {
    if (this.libc.recv(fd, this.peekByte, 1, C.MSG_PEEK | C.MSG_DONTWAIT | C.MSG_TRUNC) >= 0) return true;
    return errnoName(this.libc.errno()) !== 'EAGAIN';
  }

  /** Slots for recvmmsg/sendmmsg, allocated once. */
  batch(capacity: number, slotBytes: number): DatagramBatch {
    return new DatagramBatch(this.libc, capacity, slotBytes);
  }

  /**
   * The UDP loop's receives and sends: `epoll` (recvmmsg/sendmmsg batches of `capacity`) or
   * `uring` (multishot recvmsg into provided buffers, sends queued as SQEs).
   */
  datagramIo(engine: UdpEngineKind, capacity: number, slotBytes: number): DatagramIo {
    if (engine === 'epoll') return new EpollDatagramIo(this.batch(capacity, slotBytes), this.epoll(256));
    const epoll = this.epoll(64);
    try {
      return new UringDatagramIo(epoll, { maxDatagramBytes: slotBytes, buffers: uringBuffers(capacity), entries: URING_ENTRIES });
    } catch (error) {
      epoll.close();
      throw error;
    }
  }

  /** An epoll instance reporting up to maxEvents ready fds per wait. */
  epoll(maxEvents: number): Epoll {
    return new Epoll(this, this.libc, maxEvents);
  }

  /** A raw socket that sends UDP datagrams from any source address and port (CAP_NET_RAW). */
  rawUdpSender(family: C.Family): RawUdpSender {
    return new RawUdpSender(this, this.libc, family);
  }

}

/** SQ entries of the UDP loop's ring: sends queued in one turn beyond it are submitted early. */
const URING_ENTRIES = 512;

/** Receive buffers of the UDP loop's ring: eight batches' worth, a power of two from 256 to 4096. */
function uringBuffers(capacity: number): number {
  let n = 256;
  while (n < capacity * 8 && n < 4096) n *= 2;
  return n;
}

/** IPv6 (40) plus the longest TCP header (60): a SYN's headers always fit. */
const SAVED_SYN_BYTES = 100;
/** struct linger { int l_onoff; int l_linger; } */
const LINGER_ON = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
const LINGER_OFF = Buffer.alloc(8);

function formatForCall(endpoint: Endpoint): string {
  return endpoint.family === 6 ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`;
}

/**
 * recvmsg with preallocated msghdr/iovec/name/control buffers: one receiver per loop, reused for
 * every datagram (`data` is overwritten by the next receive).
 */
export class DatagramReceiver {
  readonly data: Buffer;
  private readonly name = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
  private readonly control = Buffer.alloc(ORIGDSTADDR_CONTROL_SPACE);
  private readonly iov = Buffer.alloc(IOVEC_SIZE);
  private readonly msghdr = Buffer.alloc(MSGHDR_SIZE);

  constructor(
    private readonly api: SocketApi,
    private readonly libc: Libc,
    maxDatagramBytes: number,
  ) {
    this.data = Buffer.alloc(maxDatagramBytes);
    writeIovec(this.iov, 0, libc.address(this.data), this.data.length);
  }

  /** One datagram, or null when none is waiting (EAGAIN). */
  receive(fd: number): ReceivedDatagram | null {
    writeMsghdr(this.msghdr, {
      nameAddress: this.libc.address(this.name),
      nameLength: this.name.length,
      iovAddress: this.libc.address(this.iov),
      iovCount: 1,
      controlAddress: this.libc.address(this.control),
      controlLength: this.control.length,
    });
    const n = this.libc.recvmsg(fd, this.msghdr, C.MSG_DONTWAIT | C.MSG_TRUNC);
    if (n < 0) {
      if (errnoName(this.libc.errno()) === 'EAGAIN') return null;
      return this.api.fail('recvmsg', { fd });
    }
    const result = readMsghdrResult(this.msghdr);
    const controlMessages = decodeControlMessages(this.control, result.controlLength);
    return {
      length: Math.min(n, this.data.length),
      truncated: (result.flags & C.MSG_TRUNC) !== 0 || n > this.data.length,
      source: decodeSockaddr(this.name, result.nameLength),
      originalDestination: originalDestination(controlMessages),
    };
  }
}

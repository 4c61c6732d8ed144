/**
 * How the UDP loop waits for datagrams and moves them: the loop's one view of its I/O, with two
 * engines behind it.
 *
 *   epoll  epoll_wait for readiness, recvmmsg on each ready socket, sendmmsg at once
 *          (EpollDatagramIo: datagram-batch.ts over epoll.ts).
 *   uring  a multishot recvmsg per socket fills provided buffers as datagrams arrive, sends are
 *          queued as SQEs, and one io_uring_enter per turn submits them and waits
 *          (uring-datagram-io.ts).
 *
 * A receive gives the datagrams of one socket as numbered slots, valid until the next receive. A
 * send of slots returns how many went (or were queued); a queued send that fails later is reported
 * through `onSendFailed` during a later wait, never thrown.
 */
import type { Endpoint } from '../core/net/sockaddr.js';
import { EPOLLIN } from '../core/net/constants.js';
import type { DatagramBatch, PinnedSockaddr, SendTarget } from './datagram-batch.js';
import type { Epoll } from './epoll.js';

export type UdpEngineKind = 'epoll' | 'uring';

export const UDP_ENGINE_CHOICES: readonly UdpEngineKind[] = ['epoll', 'uring'];

/**
 * Descriptors each engine holds for as long as it runs (SocketApi.datagramIo): epoll its epoll
 * instance; uring its ring and the epoll the ring polls (for the SOCKS5 control connections).
 */
export const DATAGRAM_IO_DESCRIPTORS: { readonly [K in UdpEngineKind]: number } = { epoll: 1, uring: 2 };

/** A send queued earlier failed with `errno` (positive): `count` datagrams on `fd` did not go. */
export type SendFailure = (fd: number, errno: number, count: number) => void;

export interface DatagramIo {
  /** Bytes in each slot of the last receive. */
  readonly lengths: Int32Array;
  /** Watches other descriptors (the SOCKS5 control connections) with readiness events. */
  readonly epoll: Epoll;
  /** Where failures of queued sends go (set by the loop). */
  onSendFailed: SendFailure;
  /** Start receiving datagrams on `fd`. */
  watch(fd: number): void;
  /** Stop receiving on `fd`, right before it is closed: nothing of this engine refers to it afterwards. */
  forget(fd: number): void;
  /** Wait up to timeoutMs (0: do not wait): the number of ready descriptors. */
  wait(timeoutMs: number): number;
  readyFd(i: number): number;
  readyEvents(i: number): number;
  /** The datagrams that came on `fd` (0 when none), or -errno. */
  receive(fd: number): number;
  slot(i: number): Buffer;
  truncated(i: number): boolean;
  source(i: number): Endpoint;
  sourceIs(i: number, sockaddr: Buffer): boolean;
  originalDestination(i: number): Endpoint | undefined;
  dscp(i: number): number | undefined;
  pin(endpoint: Endpoint): PinnedSockaddr;
  /** Send slots [from, from + count) of the last receive: how many went or were queued, or -errno. */
  send(fd: number, from: number, count: number, to: SendTarget): number;
  /** io_uring_enter or epoll_wait calls so far (the bench counts them). */
  readonly waits: number;
  close(): void;
}

/** The epoll engine: readiness from epoll_wait, recvmmsg / sendmmsg right away. */
export class EpollDatagramIo implements DatagramIo {
  readonly lengths: Int32Array;
  onSendFailed: SendFailure = () => undefined;
  waits = 0;

  constructor(
    private readonly batch: DatagramBatch,
    readonly epoll: Epoll,
  ) {
    this.lengths = batch.lengths;
  }

  watch(fd: number): void {
    this.epoll.add(fd, EPOLLIN);
  }

  forget(): void {
    // close() takes the descriptor out of the epoll set.
  }

  wait(timeoutMs: number): number {
    this.waits++;
    return this.epoll.wait(timeoutMs);
  }

  readyFd(i: number): number {
    return this.epoll.readyFd(i);
  }

  readyEvents(i: number): number {
    return this.epoll.readyEvents(i);
  }

  receive(fd: number): number {
    return this.batch.receive(fd);
  }

  slot(i: number): Buffer {
    return this.batch.slot(i);
  }

  truncated(i: number): boolean {
    return this.batch.truncated(i);
  }

  source(i: number): Endpoint {
    return this.batch.source(i);
  }

  sourceIs(i: number, sockaddr: Buffer): boolean {
    return this.batch.sourceIs(i, sockaddr);
  }

  originalDestination(i: number): Endpoint | undefined {
    return this.batch.originalDestination(i);
  }

  dscp(i: number): number | undefined {
    return this.batch.dscp(i);
  }

  pin(endpoint: Endpoint): PinnedSockaddr {
    return this.batch.pin(endpoint);
  }

  send(fd: number, from: number, count: number, to: SendTarget): number {
    return this.batch.send(fd, from, count, to);
  }

  close(): void {
    this.epoll.close();
  }
}

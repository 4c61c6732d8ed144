/**
 * epoll(7) for the UDP loop and the TCP splice engine: registration costs one call per socket, and a wait costs the same
 * whether 2 or 20,000 sockets are registered (poll(2) rewrites and scans them all every time).
 */
import * as C from '../core/net/constants.js';
import { epollEventLayout, readEpollEvent, writeEpollEvent, type EpollEventLayout } from '../core/net/epoll.js';
import type { Libc } from './libc.js';
import type { SocketApi } from './socket.js';


export class Epoll {
  /** The epoll descriptor itself (an io_uring poll can watch it). */
  readonly fd: number;
  private readonly layout: EpollEventLayout;
  private readonly ready: Buffer;
  private readonly one: Buffer;
  private readonly maxEvents: number;

  constructor(
    private readonly api: SocketApi,
    private readonly libc: Libc,
    maxEvents: number,
  ) {
    this.layout = epollEventLayout(process.arch);
    this.maxEvents = maxEvents;
    this.ready = Buffer.alloc(maxEvents * this.layout.size);
    this.one = Buffer.alloc(this.layout.size);
    this.fd = libc.epoll_create1(C.EPOLL_CLOEXEC);
    if (this.fd < 0) api.fail('epoll_create1');
  }

  /** Watch `fd` for `events` (EPOLLERR and EPOLLHUP are always reported). */
  add(fd: number, events: number = C.EPOLLIN): void {
    writeEpollEvent(this.one, this.layout, 0, events, fd);
    if (this.libc.epoll_ctl(this.fd, C.EPOLL_CTL_ADD, fd, this.one) !== 0) this.api.fail('epoll_ctl(EPOLL_CTL_ADD)', { fd });
  }

  /** Change the events watched on `fd`. */
  modify(fd: number, events: number): void {
    writeEpollEvent(this.one, this.layout, 0, events, fd);
    if (this.libc.epoll_ctl(this.fd, C.EPOLL_CTL_MOD, fd, this.one) !== 0) this.api.fail('epoll_ctl(EPOLL_CTL_MOD)', { fd });
  }

  /** Stop watching `fd` (closing it does that too; this is for fds that stay open). */
  remove(fd: number): void {
    this.libc.epoll_ctl(this.fd, C.EPOLL_CTL_DEL, fd, null);
  }

  /** Wait up to timeoutMs (-1: until an event); the number of ready entries, read with readyFd/readyEvents. */
  wait(timeoutMs: number): number {
    const n = this.libc.epoll_wait(this.fd, this.ready, this.maxEvents, timeoutMs);
    if (n >= 0) return n;
    if (this.libc.errno() === C.EINTR) return 0;
    return this.api.fail('epoll_wait');
  }

  /**
   * The same wait off this thread (koffi's worker), resolved on its event loop: for a loop that
   * shares the main thread with Node's. A failed wait (EINTR) reads as 0 ready.
   */
  waitAsync(timeoutMs: number): Promise<number> {
    const libc = this.libc;
    // A libc without it (a test's fake): look without blocking, after a short timer, never in a tight loop.
    if (!libc.epoll_wait_async) return new Promise((resolve) => setTimeout(() => resolve(this.wait(0)), timeoutMs < 0 ? 10 : Math.min(timeoutMs, 10)));
    return new Promise((resolve, reject) => {
      libc.epoll_wait_async!(this.fd, this.ready, this.maxEvents, timeoutMs, (error, n) => (error ? reject(new Error('epoll_wait on koffi\'s thread failed', { cause: error })) : resolve(Math.max(0, n))));
    });
  }

  readyFd(i: number): number {
    return readEpollEvent(this.ready, this.layout, i).fd;
  }

  readyEvents(i: number): number {
    return readEpollEvent(this.ready, this.layout, i).events;
  }

  close(): void {
    this.libc.close(this.fd);
  }
}

/**
 * The libc calls Node does not expose, bound with koffi. This file only declares them; sys/socket.ts
 * gives them types and errors. Buffers passed as `void *` are handed to C without a copy.
 */
import koffi from 'koffi';

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: Buffer): number;
  bind(fd: number, address: Buffer, length: number): number;
  listen(fd: number, backlog: number): number;
  connect(fd: number, address: Buffer, length: number): number;
  getsockname(fd: number, address: Buffer, length: Buffer): number;
  getpeername(fd: number, address: Buffer, length: Buffer): number;
  recvmsg(fd: number, msghdr: Buffer, flags: number): number;
  sendmsg(fd: number, msghdr: Buffer, flags: number): number;
  send(fd: number, data: Buffer, length: number, flags: number): number;
  sendto(fd: number, data: Buffer, length: number, flags: number, address: Buffer | null, addressLength: number): number;
  recv(fd: number, data: Buffer, length: number, flags: number): number;
  recvmmsg(fd: number, mmsghdrs: Buffer, count: number, flags: number, timeout: null): number;
  sendmmsg(fd: number, mmsghdrs: Buffer, count: number, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Buffer | null): number;
  epoll_wait(epfd: number, events: Buffer, maxEvents: number, timeoutMs: number): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  dup(fd: number): number;
  getrlimit(resource: number, limit: Buffer): number;
  setrlimit(resource: number, limit: Buffer): number;
  geteuid(): number;
  accept4(fd: number, address: Buffer | null, length: Buffer | null, flags: number): number;
  splice(fdIn: number, offIn: null, fdOut: number, offOut: null, length: number, flags: number): number;
  pipe2(fds: Buffer, flags: number): number;
  eventfd(initval: number, flags: number): number;
  read(fd: number, buf: Buffer, length: number): number;
  write(fd: number, buf: Buffer, length: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  /**
   * epoll_wait on koffi's worker thread: `done(error, n)` runs on this thread's event loop (for a
   * main-thread loop that must not block it). Absent from fake libcs; n < 0 is a failed wait (EINTR).
   */
  epoll_wait_async?: (epfd: number, events: Buffer, maxEvents: number, timeoutMs: number, done: (error: unknown, n: number) => void) => void;
  /** errno of the last failed call on this thread. */
  errno(): number;
  /** Address of a Buffer's memory, to store in C structs that point to other buffers. */
  address(buf: Buffer): bigint;
}

let cached: Libc | undefined;

/** Load libc once per thread (koffi bindings are per isolate). */
export function loadLibc(): Libc {
  if (cached) return cached;
  const lib = koffi.load('libc.so.6');
  const fn = <T>(decl: string): T => lib.func(decl) as T;
  const epollWait = lib.func('int epoll_wait(int, void *, int, int)') as unknown as { async: (...args: unknown[]) => void };
  cached = {
    socket: fn('int socket(int, int, int)'),
    setsockopt: fn('int setsockopt(int, int, int, const void *, uint32_t)'),
    getsockopt: fn('int getsockopt(int, int, int, void *, void *)'),
    bind: fn('int bind(int, const void *, uint32_t)'),
    listen: fn('int listen(int, int)'),
    connect: fn('int connect(int, const void *, uint32_t)'),
    getsockname: fn('int getsockname(int, void *, void *)'),
    getpeername: fn('int getpeername(int, void *, void *)'),
    recvmsg: fn('intptr_t recvmsg(int, void *, int)'),
    sendmsg: fn('intptr_t sendmsg(int, const void *, int)'),
    send: fn('intptr_t send(int, const void *, size_t, int)'),
    sendto: fn('intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)'),
    recv: fn('intptr_t recv(int, void *, size_t, int)'),
    recvmmsg: fn('int recvmmsg(int, void *, unsigned int, int, void *)'),
    sendmmsg: fn('int sendmmsg(int, void *, unsigned int, int)'),
    epoll_create1: fn('int epoll_create1(int)'),
    epoll_ctl: fn('int epoll_ctl(int, int, int, void *)'),
    epoll_wait: fn('int epoll_wait(int, void *, int, int)'),
    epoll_wait_async: (epfd, events, maxEvents, timeoutMs, done) => epollWait.async(epfd, events, maxEvents, timeoutMs, done),
    shutdown: fn('int shutdown(int, int)'),
    close: fn('int close(int)'),
    dup: fn('int dup(int)'),
    getrlimit: fn('int getrlimit(int, void *)'),
    setrlimit: fn('int setrlimit(int, const void *)'),
    geteuid: fn('uint32_t geteuid(void)'),
    accept4: fn('int accept4(int, void *, void *, int)'),
    splice: fn('intptr_t splice(int, void *, int, void *, size_t, unsigned int)'),
    pipe2: fn('int pipe2(void *, int)'),
    eventfd: fn('int eventfd(unsigned int, int)'),
    read: fn('intptr_t read(int, void *, size_t)'),
    write: fn('intptr_t write(int, const void *, size_t)'),
    fcntl: fn('int fcntl(int, int, int)'),
    errno: () => koffi.errno(),
    address: (buf: Buffer) => koffi.address(buf),
  };
  return cached;
}

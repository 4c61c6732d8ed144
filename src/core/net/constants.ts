/**
 * Linux socket ABI constants (x86_64 / aarch64, both use the generic values below).
 * Names are the kernel's; see include/uapi/linux/in.h, in6.h, socket.h, asm-generic/socket.h.
 */

export const AF_INET = 2;
export const AF_INET6 = 10;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const IPPROTO_IP = 0;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;

export const SOL_SOCKET = 1;
export const SOL_IP = IPPROTO_IP;
export const SOL_IPV6 = IPPROTO_IPV6;

export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_RCVBUF = 8;
export const SO_RCVBUFFORCE = 33;
export const SO_REUSEPORT = 15;
export const SO_ATTACH_FILTER = 26;
export const SO_MARK = 36;
export const SO_KEEPALIVE = 9;

/** include/uapi/linux/tcp.h */
export const TCP_NODELAY = 1;
/** 0: delay ACKs (pingpong mode), so the handshake's last ACK goes with the first bytes sent; 1: back to quick ACKs. */
export const TCP_QUICKACK = 12;
/** On a listener: a connection is accepted once its first bytes come (or, after this many seconds, on its next ACK). */
export const TCP_DEFER_ACCEPT = 9;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
/** Keep the SYN's headers on the listener's new connections; read once with TCP_SAVED_SYN (Linux 4.2+). */
export const TCP_SAVE_SYN = 27;
export const TCP_SAVED_SYN = 28;

/** include/uapi/linux/in.h */
export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_PKTINFO = 8;
export const IP_RECVTOS = 13;
export const IP_FREEBIND = 15;
export const IP_TRANSPARENT = 19;
export const IP_RECVORIGDSTADDR = 20;
/** cmsg type carrying the original destination (IP_ORIGDSTADDR == IP_RECVORIGDSTADDR). */
export const IP_ORIGDSTADDR = IP_RECVORIGDSTADDR;
export const IP_BIND_ADDRESS_NO_PORT = 24;

/** include/uapi/linux/in6.h */
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVTCLASS = 66;
export const IPV6_TCLASS = 67;
export const IPV6_PKTINFO = 50;
export const IPV6_RECVORIGDSTADDR = 74;
export const IPV6_ORIGDSTADDR = IPV6_RECVORIGDSTADDR;
export const IPV6_TRANSPARENT = 75;
export const IPV6_FREEBIND = 78;

export const MSG_PEEK = 0x02;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
/** send(): on a stream socket, go on until every byte went (io_uring retries a short send itself). */
export const MSG_WAITALL = 0x100;
export const MSG_CTRUNC = 0x08;
/** send(): more follows; TCP holds a part segment back (a FIN queued next goes in the same segment). */
export const MSG_MORE = 0x8000;

/** On a listening socket (Linux): stop listening, new connections are refused; the descriptor stays. */
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;
export const SO_LINGER = 13;

export const EPOLL_CLOEXEC = SOCK_CLOEXEC;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;
/** Wake one of the epoll sets watching the descriptor, not all (a listener shared by threads). */
export const EPOLLEXCLUSIVE = 1 << 28;
/** Edge-triggered: reported when new events arrive, not while the condition holds. */
export const EPOLLET = 0x8000_0000;
export const SPLICE_F_MOVE = 1;
export const SPLICE_F_NONBLOCK = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_SETPIPE_SZ = 1031;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

export type Family = 4 | 6;
export type Transport = 'tcp' | 'udp';

/** errno values the data plane tests for on hot paths (include/uapi/asm-generic/errno-base.h, errno.h). */
export const EINTR = 4;
export const EAGAIN = 11;
/** accept() on a socket that no longer listens. */
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ECONNABORTED = 103;
export const ECONNRESET = 104;
export const EINPROGRESS = 115;
/** io_uring: a linked timeout fired (ETIME), an operation cancelled (ECANCELED), the provided buffer ring empty (ENOBUFS). */
export const ETIME = 62;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENOBUFS = 105;
export const ECANCELED = 125;

/** Data-plane timing and batching (ours, not the kernel's). */
/** After running out of descriptors (EMFILE/ENFILE), accepting is retried this much later. */
export const DESCRIPTOR_RETRY_MS = 250;
/**
 * The longest an idle loop (UDP relay thread, splice thread, UDP mmproxy) blocks in epoll_wait
 * when nothing of its own is timed. Not forever: process.exit() waits for a thread blocked in a
 * native call (a worker thread's, or a libuv pool thread's for koffi's async calls), so an exit
 * that did not stop the loop first (a TCP worker whose supervisor died) is delayed this long at most.
 */
export const IDLE_WAIT_MAX_MS = 1000;
/** How often the splice engine checks connect deadlines and retries paused accepting. */
export const TIMER_SCAN_MS = 100;
/**
 * Read/write rounds of one direction per event before the loop serves other sockets: bounds how
 * long one fast flow holds the loop (16 x the pipe size, 4 MiB with 256 KiB pipes).
 */
export const PUMP_ROUNDS = 16;
/** The idle-timeout pass runs at 1/10 of the timeout, between these bounds. */
export const IDLE_SCAN_MIN_MS = 100;
export const IDLE_SCAN_MAX_MS = 1000;

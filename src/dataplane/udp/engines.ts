/**
 * Which UDP engine runs (sys/datagram-io.ts): `epoll` (the default) or `uring` where io_uring
 * works on this host; asked for uring where it does not, the epoll engine runs and one log line
 * (udp.engine) says why. The uring engine handles every routing the epoll one does (SOCKS5
 * control connections are watched by an epoll the ring polls; QUIC holds are the loop's own).
 */
import type { IoUringSupport } from '../../core/net/io-uring.js';
import type { UdpEngineKind } from '../../sys/datagram-io.js';
import { hostIoUringSupport } from '../../sys/io-uring.js';

export function resolveUdpEngine(requested: UdpEngineKind, support: () => IoUringSupport = hostIoUringSupport): { readonly engine: UdpEngineKind; readonly why: string | undefined } {
  if (requested !== 'uring') return { engine: requested, why: undefined };
  const host = support();
  if (!host.available) return { engine: 'epoll', why: `${host.why}: the epoll engine runs instead` };
  return { engine: 'uring', why: host.why };
}

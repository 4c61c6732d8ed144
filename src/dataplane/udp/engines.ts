/**
 * Which UDP engine runs (sys/datagram-io.ts): `epoll` (the default) or `uring` where io_uring
 * works on this host; asked for uring where it does not, the epoll engine runs. Asked for uring,
 * one log line (udp.engine) says which engine runs and why, once the loop has opened its I/O: the
 * host probe can pass and the loop's own ring still be refused (its buffers or size), and then the
 * line says that. The uring engine handles every routing the epoll one does (SOCKS5 control
 * connections are watched by an epoll the ring polls; QUIC holds are the loop's own).
 */
import type { IoUringSupport } from '../../core/net/io-uring.js';
import type { UdpEngineKind } from '../../sys/datagram-io.js';
import { hostIoUringSupport } from '../../sys/io-uring.js';
import type { ProxyEvent } from '../events.js';

/** The engine a loop runs: the one it was given, or epoll when its uring ring was refused (`fallback`: why). */
export interface RunningUdpEngine {
  readonly engine: UdpEngineKind;
  readonly fallback?: string;
}

export function resolveUdpEngine(requested: UdpEngineKind, support: () => IoUringSupport = hostIoUringSupport): { readonly engine: UdpEngineKind; readonly why: string | undefined } {
  if (requested !== 'uring') return { engine: requested, why: undefined };
  const host = support();
  if (!host.available) return { engine: 'epoll', why: `${host.why}: the epoll engine runs instead` };
  return { engine: 'uring', why: host.why };
}

/**
 * The one udp.engine line of a loop that started: which engine runs and why (none when epoll was
 * asked for). `resolved`: resolveUdpEngine's answer; `running`: what the loop reports it opened.
 */
export function udpEngineLine(requested: UdpEngineKind, resolved: { readonly engine: UdpEngineKind; readonly why: string | undefined }, running: RunningUdpEngine): Extract<ProxyEvent, { type: 'udp.engine' }> | undefined {
  if (running.fallback !== undefined) return { type: 'udp.engine', requested, engine: running.engine, why: running.fallback };
  if (resolved.why === undefined) return undefined;
  return { type: 'udp.engine', requested, engine: running.engine, why: resolved.why };
}

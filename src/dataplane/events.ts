/**
 * What the data plane reports. Plain JSON-safe objects: the CLI prints them as log lines, the demo
 * and the tests read them, the metrics layer will count them.
 */
import type { Family, Transport } from '../core/net/constants.js';
import type { Endpoint } from '../core/net/sockaddr.js';
import type { UdpCounters } from './udp/counters.js';

export type UpstreamMode = 'direct' | 'transparent';

export type ProxyEvent =
  | { readonly type: 'listening'; readonly transport: Transport; readonly family: Family; readonly local: Endpoint }
  /** Which TCP engine runs and why (asked for uring: whether io_uring and the routing allow it). */
  | { readonly type: 'tcp.engine'; readonly requested: string; readonly engine: string; readonly why: string }
  /** Which UDP engine runs and why (asked for uring: whether io_uring works here). */
  | { readonly type: 'udp.engine'; readonly requested: string; readonly engine: string; readonly why: string }
  /** `pid` on the events of a flow: the TCP worker process that relays it (flow ids are per worker; absent when TCP runs in the daemon's process). */
  | { readonly type: 'tcp.accept'; readonly id: number; readonly client: Endpoint; readonly originalDestination: Endpoint; readonly pid?: number }
  | { readonly type: 'tcp.refused'; readonly client: Endpoint; readonly originalDestination: Endpoint; readonly reason: RefusalReason }
  | { readonly type: 'tcp.connected'; readonly id: number; readonly upstreamLocal: Endpoint; readonly pid?: number }
  /** The flow's route (absent: none matched, the listener's default) and outbound; `name` when one was sniffed. */
  | { readonly type: 'tcp.route'; readonly id: number; readonly originalDestination: Endpoint; readonly route?: string; readonly outbound: string; readonly name?: string; readonly pid?: number }
  | {
      readonly type: 'tcp.close';
      readonly id: number;
      readonly client: Endpoint;
      readonly originalDestination: Endpoint;
      readonly bytesFromClient: number;
      readonly bytesFromServer: number;
      readonly durationMs: number;
      /** 'done' for a clean end both ways, else what ended it (errno name, 'timeout', 'stopped', 'rejected'). */
      readonly reason: string;
      /** The route the flow took (absent: the listener's default, or no routing). */
      readonly route?: string;
      readonly outbound?: string;
      readonly pid?: number;
    }
  | {
      readonly type: 'udp.session.open';
      readonly id: number;
      readonly client: Endpoint;
      readonly originalDestination: Endpoint;
      readonly upstreamLocal: Endpoint;
      readonly mapping: 'endpoint-dependent' | 'endpoint-independent';
      /** The session's route (absent: none matched, the listener's default) and outbound. */
      readonly route?: string;
      readonly outbound?: string;
    }
  /** A reply address was taken by a local service (EADDRINUSE): replies go out through a raw socket. */
  /** The UDP relay loop ended unexpectedly and was started again on the same listeners. */
  | { readonly type: 'udp.restart'; readonly port: number; readonly restarts: number }
  /**
   * The UDP relay loop's thread ended without closing everything (terminated after the stop
   * timeout, or its shutdown failed half-way): its owner closed the `sockets` it left open and gave
   * back the `descriptors` budget entries it still held, so a reload or restart gets the whole
   * budget and no dead socket takes a flow's datagrams. A uring loop's ring (whose requests hold
   * the sockets in the kernel) is torn down too: `engineDescriptors` (the ring and its epoll)
   * closed, `engineErrors` what failed. The epoll engine's epoll stays open.
   */
  | { readonly type: 'udp.loop.reclaimed'; readonly port: number; readonly descriptors: number; readonly sockets: number; readonly engineDescriptors?: number; readonly engineErrors?: readonly string[] }
  | { readonly type: 'udp.reply.fallback'; readonly id: number; readonly remote: Endpoint; readonly replyTo: Endpoint; readonly reason: 'EADDRINUSE' }
  /** The UDP relay's counters when it stopped (see UdpRelay.counters()). */
  | { readonly type: 'udp.stats'; readonly counters: UdpCounters }
  | {
      readonly type: 'udp.session.close';
      readonly id: number;
      readonly client: Endpoint;
      readonly originalDestination: Endpoint;
      readonly datagramsFromClient: number;
      readonly datagramsFromServer: number;
      readonly bytesFromClient: number;
      readonly bytesFromServer: number;
      readonly reason: string;
    }
  | { readonly type: 'udp.drop'; readonly reason: string; readonly source?: Endpoint }
  /**
   * A UDP session's outbound failed (a SOCKS5 association refused, broken or closed): the session
   * ends, nothing else does. At most one line per outbound and reason per second; `failures`
   * counts the sessions failed that way since the previous line (this one's included).
   */
  | {
      readonly type: 'udp.outbound.failed';
      readonly id: number;
      readonly client: Endpoint;
      readonly originalDestination: Endpoint;
      readonly outbound: string;
      /** The proxy, as a URL without its password. */
      readonly proxy: string;
      readonly reason: string;
      readonly detail: string;
      readonly failures: number;
    }
  | { readonly type: 'worker.start'; readonly pid: number; readonly restart: number }
  /**
   * A TCP worker ended without being asked to stop. lostFlows: flows it had open (as of its last
   * counters report), ended by the kernel with a reset toward both peers and counted as closed
   * `worker-lost`.
   */
  | { readonly type: 'worker.exit'; readonly pid: number; readonly exitCode: number | null; readonly signal: string | null; readonly restarting: boolean; readonly lostFlows: number }
  /** mmproxy listeners (behind a load balancer): listening (an ordinary socket), a refused connection, a health check, a relayed flow's end. */
  | { readonly type: 'mmproxy.listening'; readonly listener: string; readonly local: Endpoint }
  | { readonly type: 'mmproxy.reject'; readonly listener: string; readonly balancer: Endpoint; readonly reason: string }
  | { readonly type: 'mmproxy.local'; readonly listener: string; readonly balancer: Endpoint }
  | {
      readonly type: 'mmproxy.close';
      readonly listener: string;
      readonly balancer: Endpoint;
      /** The client the header named (absent for a health check). */
      readonly headerSource?: Endpoint;
      readonly backend: Endpoint;
      readonly bytesFromClient: number;
      readonly bytesFromBackend: number;
      readonly durationMs: number;
      readonly reason: string;
    }
  /**
   * A session of an mmproxy `protocol: udp` entry opened (the first datagram of a balancer, header
   * source and header destination) and closed: `client` is the client the header named (the
   * session socket's address), `originalDestination` the header's destination, `backend` where the
   * payloads go. Per-flow events: gated by flowEvents as udp.session.*.
   */
  | ({ readonly type: 'mmproxy.udp.open'; readonly listener: string } & MmproxyUdpSession)
  | ({
      readonly type: 'mmproxy.udp.close';
      readonly listener: string;
      readonly durationMs: number;
      /** 'idle', 'stopped', closed-by-operator, or the errno name the backend's error gave (ECONNREFUSED). */
      readonly reason: string;
    } & MmproxyUdpSession &
      MmproxyUdpTally)
  | { readonly type: 'error'; readonly code: string; readonly message: string };

/** An mmproxy UDP session: where its datagrams come from and go (its events and its snapshot). */
export interface MmproxyUdpSession {
  readonly id: number;
  readonly balancer: Endpoint;
  /** The client the header named (the session socket's address). */
  readonly client: Endpoint;
  /** The header's destination. */
  readonly originalDestination: Endpoint;
  /** Where the payloads go. */
  readonly backend: Endpoint;
}

/** What an mmproxy UDP session has moved each way. */
export interface MmproxyUdpTally {
  readonly datagramsFromClient: number;
  readonly datagramsFromBackend: number;
  readonly bytesFromClient: number;
  readonly bytesFromBackend: number;
}

export type RefusalReason = 'not-intercepted' | 'loop' | 'limit';

export type EventSink = (event: ProxyEvent) => void;

/** The reason a flow an operator closed (dashboard) ends with. */
export const OPERATOR_CLOSE_REASON = 'closed-by-operator';

/** A worker's event as its supervisor passes it on: a TCP flow's events name the worker process (ids are per worker). */
export function withWorker(event: ProxyEvent, pid: number): ProxyEvent {
  switch (event.type) {
    case 'tcp.accept':
    case 'tcp.connected':
    case 'tcp.route':
    case 'tcp.close':
      return { ...event, pid };
    default:
      return event;
  }
}

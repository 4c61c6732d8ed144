/** What the UDP relay (main thread) hands its worker loop, and the messages that come back. */
import type { UdpTestSeam } from './test-seam.js';
import type { Family } from '../../core/net/constants.js';
import type { RoutingConfig } from '../../core/route/config.js';
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { ProxyEvent } from '../events.js';
import type { SentHeaders } from '../headers.js';
import type { UdpRoutedLayout } from './counters.js';
import type { UdpEngineKind } from '../../sys/datagram-io.js';
import type { RunningUdpEngine } from './engines.js';

/**
 * How a client's upstream port is shared and who may answer through it (RFC 4787 vocabulary):
 *   endpoint-dependent   one upstream socket per (client, original destination), connected: only
 *                        that destination's datagrams come back (the default);
 *   endpoint-independent one unconnected upstream socket per client for every destination, and
 *                        any remote sending to it reaches the client with that remote as source
 *                        ("full cone", as games and STUN expect).
 */
export type UdpMapping = 'endpoint-dependent' | 'endpoint-independent';

export const UDP_MAPPINGS: readonly UdpMapping[] = ['endpoint-dependent', 'endpoint-independent'];

export interface UdpLoopConfig {
  /** The listener's routes and outbounds: each session leaves the way the route of its first datagram says. */
  readonly routing: RoutingConfig;
  /** How long a flow whose QUIC ClientHello takes several datagrams is held for the rest (default 300). */
  readonly sniffTimeoutMs?: number;
  /** The layout of the routed counters (absent: that of routing; after a reload, the union of the layouts so far). */
  readonly layout?: UdpRoutedLayout;
  readonly upstreamMark: number;
  readonly mapping: UdpMapping;
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  /** Remotes (reply sockets) per session with endpoint-independent mapping. */
  readonly maxPeersPerSession: number;
  readonly maxDatagramBytes: number;
  /** SO_RCVBUFFORCE of listeners and session sockets: what a burst may queue before drops. */
  readonly receiveBufferBytes: number;
  /** Datagrams moved per recvmmsg / sendmmsg call. */
  readonly batchSize: number;
  /** DSCP and TTL of the datagrams sent both ways (upstream and reply sockets). */
  readonly headers: SentHeaders;
  /** How datagrams are received and sent (sys/datagram-io.ts); default epoll. Resolved (uring only where it runs) before the loop starts. */
  readonly engine?: UdpEngineKind;
}

/** Index in the control Int32Array of the budget entries the loop holds (loop-budget.ts). */
export const LOOP_BUDGET_HELD = 4;
/** Int32 slots of the control array. */
export const CONTROL_SLOTS = 5;

export interface UdpWorkerData extends UdpLoopConfig {
  readonly listeners: readonly { readonly fd: number; readonly family: Family; readonly port: number }[];
  /**
   * Int32Array view [0]: set to 1 to stop the loop; [1]: set to 1 to release a test hold
   * (test-seam.ts); [2]: 1
   * while each session's open and close are reported as events (debug logging; counters are kept
   * regardless); [3]: set to 1 by a test (UdpRelay.testSeamCrashLoop (test-seam.ts)) to make the loop throw once;
   * [4] (LOOP_BUDGET_HELD): the descriptor budget entries the loop holds now (loop-budget.ts).
   * Shared memory, so a switch of [2] is in force for the next session without a message round
   * trip.
   */
  readonly control: SharedArrayBuffer;
  /** Tests only: see test-seam.ts. */
  readonly testSeam?: UdpTestSeam;
  /** Float64Array of the counters (layout in counters.ts), written by the loop. */
  readonly counters: SharedArrayBuffer;
  /** The process's descriptor budget (sys/descriptor-budget.ts), shared with the main thread. */
  readonly budget: SharedArrayBuffer;
  /** The sockets the loop opened and has not closed (loop-sockets.ts), for its owner to close if it dies. */
  readonly openSockets: SharedArrayBuffer;
  /** The owner's wake-up eventfd (sys/wakeup.ts): it writes it after each message and to stop the loop; the loop drains it. */
  readonly wakeFd: number;
}

/** Messages to the loop's thread. */
export type UdpLoopMessage =
  /**
   * A reload's routing for new flows (sessions keep theirs), with a new counter buffer laid out as
   * `layout`: the loop copies its counts into it and counts there from then on; answered once done.
   */
  | { readonly kind: 'routing'; readonly requestId: number; readonly routing: RoutingConfig; readonly sniffTimeoutMs: number; readonly layout: UdpRoutedLayout; readonly counters: SharedArrayBuffer }
  /** The `limit` busiest sessions in progress (bytes both ways), answered by a 'sessions' message. */
  | { readonly kind: 'sessions'; readonly requestId: number; readonly limit: number }
  /** End session `id` (an operator closed it): reported closed as closed-by-operator and counted; answered by 'close-session'. */
  | { readonly kind: 'close-session'; readonly requestId: number; readonly id: number };

/** A UDP session in progress, as the loop counts it now. */
export interface UdpSessionSnapshot {
  readonly id: number;
  readonly client: Endpoint;
  /** The first original destination. */
  readonly originalDestination: Endpoint;
  readonly datagramsFromClient: number;
  readonly datagramsFromServer: number;
  readonly bytesFromClient: number;
  readonly bytesFromServer: number;
  /** Since its last datagram (it expires at udp.idleTimeoutMs). */
  readonly idleMs: number;
}

export type UdpWorkerMessage =
  /** The loop runs, on `engine` (the one asked for, or epoll when its ring was refused). */
  | { readonly kind: 'ready'; readonly engine: RunningUdpEngine }
  | { readonly kind: 'events'; readonly events: readonly ProxyEvent[] }
  | { readonly kind: 'stopped' }
  /** Tests only (test-seam.ts): the loop holds between bind() and connect() of its first reply socket. */
  | { readonly kind: 'test-seam.held' }
  | { readonly kind: 'sessions'; readonly requestId: number; readonly sessions: readonly UdpSessionSnapshot[] }
  /** closed: false when no session `id` was in progress. */
  | { readonly kind: 'close-session'; readonly requestId: number; readonly closed: boolean }
  /** The routing is in force, or (error) the loop kept the one it had. */
  | { readonly kind: 'routing'; readonly requestId: number; readonly error?: string }
  | { readonly kind: 'fatal'; readonly message: string; readonly code: string };

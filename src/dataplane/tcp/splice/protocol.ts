/** Messages between a SpliceRelay (its owner thread) and the splice engine thread. */
import type { Family } from '../../../core/net/constants.js';
import type { RoutingConfig } from '../../../core/route/config.js';
import type { ProxyEvent } from '../../events.js';
import type { SentHeaders } from '../../headers.js';
import type { RoutingUpdate } from '../../routing.js';
import type { TcpCounters } from '../counters.js';
import type { TcpSnapshot } from '../flows.js';
import type { StopReport } from '../relay.js';

export interface SpliceEngineConfig {
  readonly listeners: readonly { readonly fd: number; readonly family: Family; readonly port: number }[];
  /** The routes and outbounds of the listener: each flow leaves the way its route says. */
  readonly routing: RoutingConfig;
  /** How long a flow whose name could change its route waits for its first bytes. */
  readonly sniffTimeoutMs: number;
  readonly upstreamMark: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly keepAliveMs: number;
  readonly maxConnections: number;
  /**
   * Int32Array view [0]: 1 while every flow is reported as events (accept, connected, close,
   * refused). The owner thread switches it at run time (setFlowEvents); shared memory, so the
   * switch is in force for the next flow without a message round trip.
   */
  readonly flowEvents: SharedArrayBuffer;
  /** Bytes each direction's pipe may hold (F_SETPIPE_SZ). */
  readonly pipeBytes: number;
  /** Pipes shared by the flows with bytes in flight; default capacity.ts sharedPipes(maxConnections). */
  readonly maxPipes?: number;
  readonly localAddresses: readonly string[];
  readonly countersIntervalMs: number;
  /** DSCP and TTL of the packets sent both ways (the listeners already carry the fixed ones). */
  readonly headers: SentHeaders;
}

export type ToEngine =
  | { readonly kind: 'stop'; readonly graceMs: number }
  | { readonly kind: 'local-addresses'; readonly addresses: readonly string[] }
  /** Counters and busiest flows now: answered once, from the engine's own flow table (no per-packet work). */
  | { readonly kind: 'snapshot'; readonly requestId: number; readonly limit: number }
  /** A reload's routes for new flows (flows in progress keep theirs); answered once in force. */
  | ({ readonly kind: 'routing'; readonly requestId: number } & RoutingUpdate)
  /** Reset one flow toward both peers (an operator closed it); answered with whether it was found. */
  | { readonly kind: 'close-flow'; readonly requestId: number; readonly id: number; readonly reason: string };

export type FromEngine =
  | { readonly kind: 'ready'; readonly wakeFd: number }
  | { readonly kind: 'events'; readonly events: readonly ProxyEvent[] }
  | { readonly kind: 'counters'; readonly counters: TcpCounters }
  | ({ readonly kind: 'snapshot'; readonly requestId: number } & TcpSnapshot)
  | { readonly kind: 'routing'; readonly requestId: number }
  | { readonly kind: 'close-flow'; readonly requestId: number; readonly closed: boolean }
  | { readonly kind: 'stopped'; readonly report: StopReport; readonly counters: TcpCounters }
  | { readonly kind: 'fatal'; readonly code: string; readonly message: string };

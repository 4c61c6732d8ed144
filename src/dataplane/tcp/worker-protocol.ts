/** IPC between the TCP supervisor and its worker processes. */
import type { Family } from '../../core/net/constants.js';
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { ProxyEvent } from '../events.js';
import type { RoutingUpdate } from '../routing.js';
import type { TcpCounters } from './counters.js';
import type { TcpEngineKind } from './engines.js';
import type { TcpSnapshot } from './flows.js';
import type { StopReport, TcpRelayConfig } from './relay.js';

export interface TcpWorkerConfig {
  readonly engine: TcpEngineKind;
  readonly families: readonly Family[];
  readonly relay: Omit<TcpRelayConfig, 'family'>;
  /** How often the worker reports its counters. */
  readonly countersIntervalMs: number;
}

export type SupervisorMessage =
  /**
   * The first message, once: the worker's configuration. Over IPC, not the environment: route
   * lists of 10,000s of prefixes are far larger than one environment string may be (128 KiB).
   */
  | { readonly kind: 'config'; readonly config: TcpWorkerConfig }
  | { readonly kind: 'stop'; readonly graceMs: number }
  | { readonly kind: 'snapshot'; readonly requestId: number; readonly limit: number }
  /** Per-flow events on or off from now on; answered once in force (flows started after the answer follow it). */
  | { readonly kind: 'flow-events'; readonly requestId: number; readonly on: boolean }
  /** A reload's routes for new flows (flows in progress keep theirs); answered once in force. */
  | ({ readonly kind: 'routing'; readonly requestId: number } & RoutingUpdate)
  /** Reset one flow toward both peers (an operator closed it); answered with whether it was found. */
  | { readonly kind: 'close-flow'; readonly requestId: number; readonly id: number; readonly reason: string };

export type WorkerMessage =
  | { readonly kind: 'ready'; readonly locals: readonly Endpoint[]; readonly maxConnections: number }
  | { readonly kind: 'fatal'; readonly code: string; readonly message: string; readonly details?: Record<string, unknown> }
  | { readonly kind: 'events'; readonly events: readonly ProxyEvent[] }
  | { readonly kind: 'counters'; readonly counters: TcpCounters }
  | ({ readonly kind: 'snapshot'; readonly requestId: number } & TcpSnapshot)
  | { readonly kind: 'flow-events'; readonly requestId: number }
  | { readonly kind: 'routing'; readonly requestId: number }
  | { readonly kind: 'close-flow'; readonly requestId: number; readonly closed: boolean }
  | { readonly kind: 'stopped'; readonly report: StopReport; readonly counters: TcpCounters };

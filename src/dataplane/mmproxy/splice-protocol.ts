/** Messages between an mmproxy TCP listener on the splice engine (its owner, splice-relay.ts) and its engine threads. */
import type { MmproxyEndpoint } from '../../core/config/sections/mmproxy.js';
import type { ProxyEvent } from '../events.js';
import type { MmproxyCounters } from './counters.js';

export interface MmproxyEngineConfig {
  readonly name: string;
  /**
   * Listening sockets (the owner's descriptors: threads of one process share them). Every thread
   * of the entry watches each with EPOLLEXCLUSIVE, so a connection wakes one thread.
   */
  readonly listeners: readonly number[];
  /**
   * Int32Array view [0]: 1 while the entry accepts. The owner clears it when the entry leaves (a
   * reload hands its listening sockets over, or it drains): shared memory, so no accept follows
   * without waiting for a message.
   */
  readonly accepting: SharedArrayBuffer;
  /** Int32Array view [0]: 1 while the per-flow events are asked for (MmproxyTcpDeps.flowEvents; the owner switches it). */
  readonly flowEvents: SharedArrayBuffer;
  readonly allowedSources: readonly string[];
  readonly backend4?: MmproxyEndpoint;
  readonly backend6?: MmproxyEndpoint;
  readonly healthTarget?: MmproxyEndpoint;
  readonly headerTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly upstreamMark: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Bytes each direction's pipe may hold (F_SETPIPE_SZ). */
  readonly pipeBytes: number;
  /** The process's descriptor budget (DescriptorBudget.buffer): each connection asks it at accept. */
  readonly budget?: SharedArrayBuffer;
  readonly countersIntervalMs: number;
}

export type ToMmproxyEngine =
  /** Watch these listening sockets too (handed over by the entry this one replaces). */
  | { readonly kind: 'watch'; readonly fds: readonly number[] }
  /** Stop watching these (handed to the entry that replaces this one; they stay open); answered once done. */
  | { readonly kind: 'release'; readonly requestId: number; readonly fds: readonly number[] }
  /** Stop watching every listener and let the connections in progress end: 'stopped' once none is left. */
  | { readonly kind: 'drain' }
  /** Stop watching every listener and reset every connection: 'stopped' at once. */
  | { readonly kind: 'stop' };

export type FromMmproxyEngine =
  | { readonly kind: 'ready'; readonly wakeFd: number }
  /** Events with the counters as of them (each counter that moves has its event: refusals, health checks, closes). */
  | { readonly kind: 'events'; readonly events: readonly ProxyEvent[]; readonly counters: MmproxyCounters; readonly connections: number }
  /** Cumulative counters of this thread, and its connections in progress (flows and headers being read). */
  | { readonly kind: 'counters'; readonly counters: MmproxyCounters; readonly connections: number }
  | { readonly kind: 'released'; readonly requestId: number }
  | { readonly kind: 'stopped'; readonly counters: MmproxyCounters }
  | { readonly kind: 'fatal'; readonly code: string; readonly message: string };

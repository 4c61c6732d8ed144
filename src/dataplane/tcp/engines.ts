/**
 * The two TCP engines behind one interface: `splice` (bytes move kernel to kernel through pipes,
 * driven by an epoll loop in a thread; the default) and `stream` (Node streams and pipe(); simple,
 * and the reference the splice engine is held to).
 */
import type { Family } from '../../core/net/constants.js';
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { SocketApi } from '../../sys/socket.js';
import type { EventSink } from '../events.js';
import type { RoutingUpdate } from '../routing.js';
import { sumTcpCounters, type TcpCounters } from './counters.js';
import { busiestFlows, type TcpSnapshot } from './flows.js';
import { TcpRelay, type StopReport, type TcpRelayConfig } from './relay.js';
import { SpliceRelay } from './splice/relay.js';
import type { IoUringSupport } from '../../core/net/io-uring.js';
import { hostIoUringSupport } from '../../sys/io-uring.js';

export type TcpEngineKind = 'splice' | 'stream' | 'uring';

export const PIPE_BYTES = 256 * 1024;

export interface TcpEngine {
  start(): Promise<Endpoint[]>;
  stop(graceMs: number): Promise<StopReport>;
  counters(): TcpCounters;
  /** Counters now (bytes of flows in progress included) and the busiest flows: taken on request. */
  snapshot(limit: number): Promise<TcpSnapshot>;
  /** Per-flow events on or off from now on, without touching the listeners or flows. */
  setFlowEvents(on: boolean): void;
  /** New flows take these routes from now on; flows in progress keep theirs. Resolves once in force. */
  setRouting(update: RoutingUpdate): Promise<void>;
  /** Reset flow `id` toward both peers, closed as `reason`; false when it is not in progress here. */
  closeFlow(id: number, reason: string): Promise<boolean>;
}

export interface TcpEngineDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
  readonly localAddresses: () => ReadonlySet<string>;
}

/**
 * The engine that runs for `requested`: uring only where io_uring works here (it handles every
 * routing the splice engine does), else splice; with one log line (tcp.engine) saying which and why.
 */
export function resolveTcpEngine(requested: TcpEngineKind, support: () => IoUringSupport = hostIoUringSupport): { readonly engine: TcpEngineKind; readonly why: string | undefined } {
  if (requested !== 'uring') return { engine: requested, why: undefined };
  const host = support();
  if (!host.available) return { engine: 'splice', why: `${host.why}: the splice engine runs instead` };
  return { engine: 'uring', why: host.why };
}

export function createTcpEngine(requested: TcpEngineKind, families: readonly Family[], config: Omit<TcpRelayConfig, 'family'>, deps: TcpEngineDeps): TcpEngine {
  const { engine: kind, why } = resolveTcpEngine(requested);
  if (why !== undefined) deps.emit({ type: 'tcp.engine', requested, engine: kind, why });
  if (kind === 'splice' || kind === 'uring') {
    const relay = new SpliceRelay({ ...config, families, pipeBytes: PIPE_BYTES, engine: kind }, deps);
    return { start: () => relay.start(), stop: (g) => relay.stop(g), counters: () => relay.counters, snapshot: (limit) => relay.snapshot(limit), setFlowEvents: (on) => relay.setFlowEvents(on), setRouting: (update) => relay.setRouting(update), closeFlow: (id, reason) => relay.closeFlow(id, reason) };
  }
  const relays = families.map((family) => new TcpRelay({ ...config, family }, deps));
  return {
    async start() {
      const locals: Endpoint[] = [];
      for (const r of relays) locals.push(await r.start());
      return locals;
    },
    async stop(graceMs) {
      const reports = await Promise.all(relays.map((r) => r.stop(graceMs)));
      return reports.reduce((a, r) => ({ completed: a.completed + r.completed, forced: a.forced + r.forced }), { completed: 0, forced: 0 });
    },
    counters: () => sumTcpCounters(relays.map((r) => r.counters)),
    snapshot: (limit) => Promise.resolve({ counters: sumTcpCounters(relays.map((r) => r.liveCounters())), flows: busiestFlows(relays.map((r) => r.busiest(limit)), limit) }),
    setFlowEvents: (on) => relays.forEach((r) => r.setFlowEvents(on)),
    setRouting: (update) => {
      for (const r of relays) r.setRouting(update);
      return Promise.resolve();
    },
    closeFlow: (id, reason) => Promise.resolve(relays.some((r) => r.closeFlow(id, reason))),
  };
}

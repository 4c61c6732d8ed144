/**
 * The two TCP engines behind one interface: `splice` (bytes move kernel to kernel through pipes,
 * driven by an epoll loop in a thread; the default) and `stream` (Node streams and pipe(); simple,
 * and the reference the splice engine is held to).
 */
import type { Family } from '../../core/net/constants.js';
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { SocketApi } from '../../sys/socket.js';
import type { EventSink } from '../events.js';
import { sumTcpCounters, type TcpCounters } from './counters.js';
import { busiestFlows, type TcpSnapshot } from './flows.js';
import { TcpRelay, type StopReport, type TcpRelayConfig } from './relay.js';
import { SpliceRelay } from './splice/relay.js';

export type TcpEngineKind = 'splice' | 'stream';

export const PIPE_BYTES = 256 * 1024;

export interface TcpEngine {
  start(): Promise<Endpoint[]>;
  stop(graceMs: number): Promise<StopReport>;
  counters(): TcpCounters;
  /** Counters now (bytes of flows in progress included) and the busiest flows: taken on request. */
  snapshot(limit: number): Promise<TcpSnapshot>;
  /** Per-flow events on or off from now on, without touching the listeners or flows. */
  setFlowEvents(on: boolean): void;
  /** Reset flow `id` toward both peers, closed as `reason`; false when it is not in progress here. */
  closeFlow(id: number, reason: string): Promise<boolean>;
}

export interface TcpEngineDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
  readonly localAddresses: () => ReadonlySet<string>;
}

export function createTcpEngine(kind: TcpEngineKind, families: readonly Family[], config: Omit<TcpRelayConfig, 'family'>, deps: TcpEngineDeps): TcpEngine {
  if (kind === 'splice') {
    const relay = new SpliceRelay({ ...config, families, pipeBytes: PIPE_BYTES }, deps);
    return { start: () => relay.start(), stop: (g) => relay.stop(g), counters: () => relay.counters, snapshot: (limit) => relay.snapshot(limit), setFlowEvents: (on) => relay.setFlowEvents(on), closeFlow: (id, reason) => relay.closeFlow(id, reason) };
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
    closeFlow: (id, reason) => Promise.resolve(relays.some((r) => r.closeFlow(id, reason))),
  };
}

/**
 * What both mmproxy TCP engine threads (splice-engine.ts, uring-engine.ts) decide from a PROXY
 * header and tell their owner about a connection: where the header sends it, the counters, and the
 * per-flow events (only when the owner's shared flag asks for them; refusals that mean a
 * misconfigured balancer always). One place, so the two engines cannot drift apart.
 */
import type { MmproxyEndpoint } from '../../core/config/sections/mmproxy.js';
import type * as C from '../../core/net/constants.js';
import { encodeSockaddr, type Endpoint } from '../../core/net/sockaddr.js';
import type { ProxyHeader } from '../../core/proxy-protocol/header.js';
import type { ProxyEvent } from '../events.js';
import type { ReportedCounters } from '../tcp/splice/timers.js';
import { count, emptyMmproxyCounters, type MmproxyCounters } from './counters.js';
import type { FromMmproxyEngine, MmproxyEngineConfig } from './splice-protocol.js';
import { isFlowRefusal } from './tcp-relay.js';

export const familyOf = (e: MmproxyEndpoint): C.Family => (e.address.includes(':') ? 6 : 4);

/** Where a decoded header sends its connection. */
export type HeaderRoute =
  /** LOCAL (a health check): to the health target, or nowhere. */
  | { readonly kind: 'local'; readonly target: Endpoint | undefined }
  /** From the client the header names, to the fixed backend of its family or the header's destination. */
  | { readonly kind: 'proxy'; readonly source: Endpoint; readonly backend: Endpoint }
  | { readonly kind: 'refuse'; readonly reason: 'backend-family' };

/** Bytes a connection has moved each way so far. */
interface Moved {
  readonly up: { readonly bytes: number };
  readonly down: { readonly bytes: number };
}

/** A relayed flow as its close reports it. */
export interface ReportedFlow extends Moved {
  readonly balancer: Endpoint;
  /** The client the header named (undefined for a health check). */
  readonly from: Endpoint | undefined;
  readonly started: number;
}

/** What the splice engine's shared pipes count (its PipePool): carried by every snapshot. */
export interface PipeCounts {
  readonly resizesRefused: number;
  readonly waits: number;
  readonly waiting: number;
}

export class EntryReport {
  readonly counters: MmproxyCounters = emptyMmproxyCounters();
  /** The splice engine's shared pipes (none on uring): their counts go into every snapshot, the periodic ones included. */
  pipes: PipeCounts | undefined;
  private events: ProxyEvent[] = [];
  private readonly flowEvents: Int32Array;
  /** The fixed backends and the health target as endpoints, and their sockaddrs, made once (route gives these very objects). */
  private readonly backend4: Endpoint | undefined;
  private readonly backend6: Endpoint | undefined;
  private readonly healthTarget: Endpoint | undefined;
  private readonly sockaddrs = new Map<Endpoint, Buffer>();

  constructor(
    private readonly config: MmproxyEngineConfig,
    private readonly now: () => number,
  ) {
    this.flowEvents = new Int32Array(config.flowEvents);
    const endpoint = (e: MmproxyEndpoint | undefined): Endpoint | undefined => {
      if (!e) return undefined;
      const made: Endpoint = { family: familyOf(e), ...e };
      this.sockaddrs.set(made, encodeSockaddr(made));
      return made;
    };
    this.backend4 = endpoint(config.backend4);
    this.backend6 = endpoint(config.backend6);
    this.healthTarget = endpoint(config.healthTarget);
  }

  /** The sockaddr of a backend route gave: made once for the fixed ones, encoded now for a header's destination. */
  sockaddrOf(backend: Endpoint): Buffer {
    return this.sockaddrs.get(backend) ?? encodeSockaddr(backend);
  }

  /** The per-flow events are asked for (the owner's setFlowEvents). */
  private get flowEventsOn(): boolean {
    return Atomics.load(this.flowEvents, 0) === 1;
  }

  emit(event: ProxyEvent): void {
    this.events.push(event);
  }

  /** The header's route, counted (PROXY or LOCAL) and, for LOCAL, reported. */
  route(header: ProxyHeader, balancer: Endpoint): HeaderRoute {
    const addresses = header.command === 'proxy' ? header.addresses : undefined;
    if (!addresses) {
      this.counters.headersLocal++;
      if (this.flowEventsOn) this.emit({ type: 'mmproxy.local', listener: this.config.name, balancer });
      return { kind: 'local', target: this.healthTarget };
    }
    this.counters.headersProxy++;
    const { source, destination } = addresses;
    const backend = (source.family === 4 ? this.backend4 : this.backend6) ?? destination;
    // Only a fixed backend can differ (the header's addresses share a family): a client cannot be a source toward it.
    if (backend.family !== source.family) return { kind: 'refuse', reason: 'backend-family' };
    return { kind: 'proxy', source, backend };
  }

  /** A connection refused before any relay (the engine resets it). */
  refused(balancer: Endpoint, reason: string): void {
    count(this.counters.rejected, reason);
    if (!isFlowRefusal(reason) || this.flowEventsOn) this.emit({ type: 'mmproxy.reject', listener: this.config.name, balancer, reason });
  }

  /** A relayed flow ended. */
  closed(flow: ReportedFlow, backend: Endpoint, reason: string): void {
    const c = this.counters;
    c.active--;
    count(c.closed, reason);
    c.bytesFromClient += flow.up.bytes;
    c.bytesFromBackend += flow.down.bytes;
    if (!this.flowEventsOn) return;
    this.emit({
      type: 'mmproxy.close',
      listener: this.config.name,
      balancer: flow.balancer,
      ...(flow.from ? { headerSource: flow.from } : {}),
      backend,
      bytesFromClient: flow.up.bytes,
      bytesFromBackend: flow.down.bytes,
      durationMs: this.now() - flow.started,
      reason,
    });
  }

  /** The counters as they are now, with the bytes of the flows still open (`open`) counted in. */
  snapshot(open: Iterable<Moved>): MmproxyCounters {
    const c = this.counters;
    let bytesFromClient = c.bytesFromClient;
    let bytesFromBackend = c.bytesFromBackend;
    for (const f of open) {
      bytesFromClient += f.up.bytes;
      bytesFromBackend += f.down.bytes;
    }
    const p = this.pipes;
    const pipes = p ? { pipeResizesRefused: p.resizesRefused, pipeWaits: p.waits, pipeWaiting: p.waiting } : {};
    return { ...c, rejected: { ...c.rejected }, connectErrors: { ...c.connectErrors }, closed: { ...c.closed }, bytesFromClient, bytesFromBackend, ...pipes };
  }

  /**
   * The end of a loop turn: the events gathered go to the owner with the counters; the counters
   * alone when `countersDue` (remembered by `reported`).
   */
  post(post: (message: FromMmproxyEngine) => void, open: () => Iterable<Moved>, connections: number, countersDue: boolean, reported: ReportedCounters, timed: boolean): void {
    if (this.events.length > 0) {
      post({ kind: 'events', events: this.events, counters: this.snapshot(open()), connections });
      this.events = [];
    }
    reported.postWhenDue(countersDue, () => this.snapshot(open()), (counters) => post({ kind: 'counters', counters, connections }), timed);
  }
}

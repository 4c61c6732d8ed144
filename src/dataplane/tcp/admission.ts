/**
 * Per-flow admission, the same in both thread engines (splice and uring): what happens to an
 * accepted connection before and around its bytes move. The refusal (counted by reason, with its
 * event), the flow's number and accept event, its route decision (counted per route and outbound,
 * with its event; a reject outbound ends it here), the upstream socket with the flow's DSCP, the
 * socket options once connected, the accounting of a closed flow, and the counter and busiest-flow
 * snapshots. The engines keep what differs: how they wait (epoll or io_uring) and move bytes.
 *
 * It holds the state those steps share: counters, the event queue, this host's addresses, the
 * route table (a reload swaps it; flows keep the decision they took) and the flow numbers.
 */
import * as C from '../../core/net/constants.js';
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { RoutingConfig } from '../../core/route/config.js';
import { type RouteDecision, RouteTable } from '../../core/route/table.js';
import type { SocketApi } from '../../sys/socket.js';
import type { ProxyEvent } from '../events.js';
import { copyRouted, countRouted, emptyTcpCounters, increment, type TcpCounters } from './counters.js';
import { topN, type TcpFlowSnapshot } from './flows.js';
import { refusalReason } from './refusal.js';
import { routeFields, routeFlowOf } from './routing.js';
import type { SpliceEngineConfig } from './splice/protocol.js';
import { openUpstreamSocket, type ConnectingOutbound } from './upstream-socket.js';

/** What admission reads of an engine's flow. */
export interface AdmittedFlow {
  readonly id: number;
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly decision: RouteDecision;
  readonly up: { readonly bytes: number };
  readonly down: { readonly bytes: number };
  readonly started: number;
  readonly connected: boolean;
}

export class FlowAdmission {
  readonly counters: TcpCounters = emptyTcpCounters();
  /** Routes of new flows; a reload swaps it, flows keep the decision they took. */
  private routes: RouteTable;
  localAddresses: Set<string>;
  private readonly flowEventsFlag: Int32Array;
  private pending: ProxyEvent[] = [];
  private nextId = 1;

  constructor(
    private readonly config: SpliceEngineConfig,
    private readonly api: SocketApi,
    private readonly now: () => number,
  ) {
    this.routes = RouteTable.compile(config.routing);
    this.localAddresses = new Set(config.localAddresses);
    this.flowEventsFlag = new Int32Array(config.flowEvents);
  }

  /** Read per flow event, not once: the owner switches it while the engine runs. */
  flowEvents(): boolean {
    return Atomics.load(this.flowEventsFlag, 0) === 1;
  }

  emit(event: ProxyEvent): void {
    this.pending.push(event);
  }

  /** The events queued since the last call (undefined: none). */
  takeEvents(): ProxyEvent[] | undefined {
    if (this.pending.length === 0) return undefined;
    const events = this.pending;
    this.pending = [];
    return events;
  }

  /**
   * The refusal step: the new flow's number (its accept event sent), or undefined when it is
   * refused (counted by reason, its event sent): the caller resets the connection.
   */
  admit(listenPort: number, client: Endpoint, destination: Endpoint, activeFlows: number): number | undefined {
    const refused = refusalReason(client, destination, { localAddresses: this.localAddresses, listenPort, activeFlows, maxConnections: this.config.maxConnections });
    if (refused) {
      this.counters.refused[refused]++;
      if (this.flowEvents()) this.emit({ type: 'tcp.refused', client, originalDestination: destination, reason: refused });
      return undefined;
    }
    const id = this.nextId++;
    if (this.flowEvents()) this.emit({ type: 'tcp.accept', id, client, originalDestination: destination });
    return id;
  }

  /** A reload's routes, for new flows. */
  reroute(routing: RoutingConfig): void {
    this.routes = RouteTable.compile(routing);
  }

  /** The route of a flow without a name, or 'sniff' when its name could change it. */
  firstDecision(client: Endpoint, destination: Endpoint): RouteDecision | 'sniff' {
    return this.routes.decideUnnamed(routeFlowOf(client, destination));
  }

  decide(client: Endpoint, destination: Endpoint, name?: string): RouteDecision {
    return this.routes.decide(routeFlowOf(client, destination, name));
  }

  /**
   * The route step: the flow counts under its route and outbound (its event sent). A reject
   * outbound ends it here (accepted, closed `rejected`): false, and the caller resets it.
   */
  routed(id: number, client: Endpoint, destination: Endpoint, decision: RouteDecision, name?: string): decision is RouteDecision & { readonly outbound: ConnectingOutbound } {
    countRouted(this.counters, decision.route, decision.outbound.name, 1);
    if (this.flowEvents()) this.emit({ type: 'tcp.route', id, originalDestination: destination, ...routeFields(decision), ...(name === undefined ? {} : { name }) });
    if (decision.outbound.kind !== 'reject') return true;
    this.counters.accepted++;
    increment(this.counters.closed, 'rejected');
    if (this.flowEvents()) this.emit({ type: 'tcp.close', id, client, originalDestination: destination, bytesFromClient: 0, bytesFromServer: 0, durationMs: 0, reason: 'rejected', ...routeFields(decision) });
    return false;
  }

  /**
   * The flow's upstream socket, bound, not connected, with the flow's DSCP (`dscp: copy`: its
   * SYN's, also set on the client socket). Throws TproxyError with the errno.
   */
  openUpstream(cfd: number, family: C.Family, client: Endpoint, outbound: ConnectingOutbound, dscp: number | undefined = this.flowDscp(cfd, family)): number {
    const settings = { upstreamMark: this.config.upstreamMark, ttl: this.config.headers.ttl };
    return openUpstreamSocket(this.api, settings, client, outbound, dscp, () => this.counters.clientPortFallbacks++);
  }

  /**
   * The flow's DSCP for its upstream socket, undefined for none; with `dscp: copy` its SYN's
   * (read once), also set on the client socket. (The uring engine sets it on the upstream socket
   * through the ring.)
   */
  flowDscp(cfd: number, family: C.Family): number | undefined {
    const dscpSetting = this.config.headers.dscp;
    if (dscpSetting !== 'copy') return typeof dscpSetting === 'number' ? dscpSetting : undefined;
    const dscp = this.api.savedSynDscp(cfd) ?? 0;
    this.api.setDscp(cfd, family, dscp);
    return dscp;
  }

  /**
   * The upstream is connected: TCP_NODELAY upstream (unless `noDelaySet`: the uring engine sets
   * it before the connect, through the ring), keep-alive both ways, the connected event.
   */
  connected(id: number, cfd: number, ufd: number, noDelaySet = false): void {
    // Segments leave as they come: Nagle would hold the tail of a response for the peer's
    // delayed ACK (up to 40 ms per exchange). Accepted sockets inherit it from the listener.
    if (!noDelaySet) this.api.setInt(ufd, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
    if (this.config.keepAliveMs > 0) {
      const idle = Math.max(1, Math.round(this.config.keepAliveMs / 1000));
      for (const fd of [cfd, ufd]) {
        this.api.setInt(fd, C.SOL_SOCKET, C.SO_KEEPALIVE, 1);
        this.api.setInt(fd, C.IPPROTO_TCP, C.TCP_KEEPIDLE, idle);
        this.api.setInt(fd, C.IPPROTO_TCP, C.TCP_KEEPINTVL, Math.max(1, Math.round(idle / 3)));
        this.api.setInt(fd, C.IPPROTO_TCP, C.TCP_KEEPCNT, 3);
      }
    }
    if (this.flowEvents()) this.emit({ type: 'tcp.connected', id, upstreamLocal: this.api.localEndpoint(ufd) });
  }

  /** A flow ended (already out of the engine's table, `active` flows left): counted by reason, its bytes kept, its event sent. */
  closed(flow: AdmittedFlow, reason: string, active: number): void {
    increment(this.counters.closed, reason);
    this.counters.bytesFromClient += flow.up.bytes;
    this.counters.bytesFromServer += flow.down.bytes;
    countRouted(this.counters, flow.decision.route, flow.decision.outbound.name, 0, flow.up.bytes, flow.down.bytes);
    this.counters.active = active;
    if (this.flowEvents()) {
      this.emit({
        type: 'tcp.close',
        id: flow.id,
        client: flow.client,
        originalDestination: flow.destination,
        bytesFromClient: flow.up.bytes,
        bytesFromServer: flow.down.bytes,
        durationMs: this.now() - flow.started,
        reason,
        ...routeFields(flow.decision),
      });
    }
  }

  /** The counters now, bytes of the flows in progress included (a copy: snapshots share no live record). */
  /** `pipes`: the splice engine's pipe pool, whose line gives pipeWaits and pipeWaiting, and its refused sizes pipeResizesRefused. */
  snapshot(flows: Iterable<AdmittedFlow>, active: number, pipes?: { readonly waits: number; readonly waiting: number; readonly resizesRefused: number }): TcpCounters {
    let bytesFromClient = this.counters.bytesFromClient;
    let bytesFromServer = this.counters.bytesFromServer;
    const routed = { routes: copyRouted(this.counters.routes), outbounds: copyRouted(this.counters.outbounds) };
    for (const f of flows) {
      bytesFromClient += f.up.bytes;
      bytesFromServer += f.down.bytes;
      countRouted(routed, f.decision.route, f.decision.outbound.name, 0, f.up.bytes, f.down.bytes);
    }
    const waits = pipes ? { pipeWaits: pipes.waits, pipeWaiting: pipes.waiting, pipeResizesRefused: pipes.resizesRefused } : {};
    return { ...this.counters, active, bytesFromClient, bytesFromServer, refused: { ...this.counters.refused }, connectErrors: { ...this.counters.connectErrors }, closed: { ...this.counters.closed }, ...routed, ...waits };
  }

  /** The busiest flows by bytes both ways. */
  busiest(flows: Iterable<AdmittedFlow>, limit: number): TcpFlowSnapshot[] {
    const now = this.now();
    return topN(flows, limit, (f) => f.up.bytes + f.down.bytes).map((f) => ({
      id: f.id,
      client: f.client,
      originalDestination: f.destination,
      bytesFromClient: f.up.bytes,
      bytesFromServer: f.down.bytes,
      ageMs: now - f.started,
      connected: f.connected,
    }));
  }
}

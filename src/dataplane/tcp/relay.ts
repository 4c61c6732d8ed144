/**
 * Transparent TCP relay: a listener with IP_TRANSPARENT receives TPROXY'd connections; the accepted
 * socket's local address is the original destination; bytes are relayed to it and back.
 *
 * Upstream `direct`: this host's address as source. `transparent`: the upstream socket is bound to
 * the client's address and port (IP_TRANSPARENT), so the server sees the client; the divert rule
 * brings the server's replies back to it. Both carry SO_MARK so our own traffic is never
 * intercepted again.
 *
 * Stream semantics: backpressure both ways (pipe), half-close (allowHalfOpen: a FIN crosses as a
 * FIN while the other direction keeps flowing), resets cross as resets (a refused or failed
 * upstream resets the client, a client reset resets the upstream), connect and idle timeouts.
 *
 * Sent headers (headers.ts): the listener carries the DSCP and TTL, so every accepted socket inherits
 * them (SYN-ACK included); each upstream socket gets them before its SYN. With `dscp: copy` the
 * listener keeps each SYN (TCP_SAVE_SYN) and both sockets of a flow get that SYN's DSCP.
 *
 * Reset on crash: the listener has SO_LINGER {1, 0}, inherited by every accepted socket, and each
 * upstream socket gets it too; a socket's linger is cleared once its FIN is sent ('finish'), so a
 * graceful end stays a FIN, while a process that dies mid-flow resets both peers (the kernel
 * closes the sockets with the linger in force).
 *
 * Accepting pauses instead of failing: the listening socket is ours and libuv gets a dup() of it;
 * at the connection cap or the descriptor limit we close libuv's copy only, so the kernel keeps
 * queueing connections in the backlog until we take them again.
 */
import net from 'node:net';
import { TproxyError, errnoOf } from '../../core/errors.js';
import * as C from '../../core/net/constants.js';
import type { Family } from '../../core/net/constants.js';
import { anyAddress, normalizeAddress, type Endpoint } from '../../core/net/sockaddr.js';
import type { SocketApi } from '../../sys/socket.js';
import type { EventSink } from '../events.js';
import { fixedDscp, type SentHeaders } from '../headers.js';
import { copyRouted, countRouted, emptyTcpCounters, increment, type TcpCounters } from './counters.js';
import { createHandshake } from '../../core/upstream/handshake.js';
import type { RoutingConfig } from '../../core/route/config.js';
import { type RouteDecision, RouteTable } from '../../core/route/table.js';
import { proxyHeaderFor, routeFields, routeFlowOf } from './routing.js';
import { sniffClient } from './sniff-stream.js';
import { handshakeOverStream, type HandshakeFailure } from './handshake-stream.js';
import { topN, type TcpFlowSnapshot } from './flows.js';
import { refusalReason } from './refusal.js';
import { openUpstreamSocket, type ConnectingOutbound } from './upstream-socket.js';
import type { RoutingUpdate } from '../routing.js';

export interface TcpRelayConfig {
  readonly family: Family;
  /** Listen address per family; default the wildcard of the family. */
  readonly addresses?: { readonly 4?: string; readonly 6?: string };
  readonly port: number;
  /** The routes and outbounds of the listener: each flow leaves the way its route says. */
  readonly routing: RoutingConfig;
  /** How long a flow whose name could change its route waits for its first bytes. */
  readonly sniffTimeoutMs: number;
  readonly upstreamMark: number;
  /** Covers the upstream proxy's handshake too. */
  readonly connectTimeoutMs: number;
  /** Close a flow with no traffic either way for this long (0: never). */
  readonly idleTimeoutMs: number;
  /** TCP keepalive probes on both sockets after this idle time (0: off). */
  readonly keepAliveMs: number;
  readonly backlog: number;
  readonly reusePort: boolean;
  /** Accepting pauses while this many flows are active. */
  readonly maxConnections: number;
  /** Emit an event per flow (accept, connected, close, refused); counters are kept regardless. Switched later by setFlowEvents. */
  readonly flowEvents: boolean;
  /** DSCP and TTL of the packets sent both ways; absent: the kernel's defaults. */
  readonly headers?: SentHeaders;
}

export interface TcpRelayDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
  /** Addresses of this host (for loop and direct-connection refusal). */
  readonly localAddresses: () => ReadonlySet<string>;
  /** The clock of flow ages and durations and of the stop deadline (ms); default Date.now. */
  readonly now?: () => number;
}

export interface StopReport {
  /** Flows that ended on their own during the grace period. */
  readonly completed: number;
  /** Flows reset at the deadline. */
  readonly forced: number;
}

interface Flow {
  readonly id: number;
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly clientEnd: Endpoint;
  readonly destination: Endpoint;
  readonly started: number;
  /** The route and outbound the flow took at its start; a reload does not change them. */
  readonly decision: RouteDecision;
  connected(): boolean;
  /** Bytes the upstream proxy's replies took: read from the upstream socket, not from the server. */
  handshakeBytes(): number;
  end(reason: string): void;
}

const endpointOf = (family: Family, address: string | undefined, port: number | undefined): Endpoint => ({
  family,
  address: normalizeAddress(address ?? anyAddress(family)),
  port: port ?? 0,
});


export class TcpRelay {
  readonly counters: TcpCounters = emptyTcpCounters();
  private listenFd = -1;
  private server: net.Server | undefined;
  private paused = false;
  private stopping = false;
  private resumeTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private readonly flows = new Set<Flow>();
  private flowEvents: boolean;
  /** Routes of new flows; a reload swaps it (setRouting), flows keep the decision they took. */
  private routes: RouteTable;
  private sniffTimeoutMs: number;
  /** Connections waiting for their name (not flows yet; they count toward the cap). */
  private sniffing = 0;
  private readonly now: () => number;

  constructor(
    private readonly config: TcpRelayConfig,
    private readonly deps: TcpRelayDeps,
  ) {
    this.flowEvents = config.flowEvents;
    this.routes = RouteTable.compile(config.routing);
    this.now = deps.now ?? Date.now;
    this.sniffTimeoutMs = config.sniffTimeoutMs;
  }

  /** Report every flow from now on (each event as it happens), or stop reporting; flows go on either way. */
  setFlowEvents(on: boolean): void {
    this.flowEvents = on;
  }

  /** New flows (and connections still waiting for their name) take these routes; flows in progress keep theirs. */
  setRouting(update: RoutingUpdate): void {
    this.routes = RouteTable.compile(update.routing);
    this.sniffTimeoutMs = update.sniffTimeoutMs;
  }

  /** Reset flow `id` toward both peers (closed as `reason`); false when no such flow is in progress. */
  closeFlow(id: number, reason: string): boolean {
    for (const flow of this.flows) {
      if (flow.id !== id) continue;
      flow.end(reason);
      return true;
    }
    return false;
  }

  /** Open the transparent listener; throws TproxyError (EADDRINUSE, EPERM ...) with advice. */
  async start(): Promise<Endpoint> {
    const { sockets } = this.deps;
    const { family } = this.config;
    const headers = this.config.headers ?? {};
    const fd = sockets.open({ family, transport: 'tcp', transparent: true, reuseAddress: true, reusePort: this.config.reusePort, ...listenerHeaders(headers) });
    try {
      sockets.setResetOnClose(fd, true);
      sockets.bind(fd, { family, address: this.config.addresses?.[family] ?? anyAddress(family), port: this.config.port });
      sockets.listen(fd, this.config.backlog);
    } catch (error) {
      sockets.close(fd);
      throw error;
    }
    this.listenFd = fd;
    await this.attach();
    const local = sockets.localEndpoint(fd);
    this.deps.emit({ type: 'listening', transport: 'tcp', family, local });
    return local;
  }

  get activeFlows(): number {
    return this.flows.size;
  }

  /** The counters with the bytes of flows in progress (counted into `counters` when they end). */
  liveCounters(): TcpCounters {
    let bytesFromClient = this.counters.bytesFromClient;
    let bytesFromServer = this.counters.bytesFromServer;
    const routed = { routes: copyRouted(this.counters.routes), outbounds: copyRouted(this.counters.outbounds) };
    for (const f of this.flows) {
      const up = f.client.bytesRead;
      const down = f.upstream.bytesRead - f.handshakeBytes();
      bytesFromClient += up;
      bytesFromServer += down;
      countRouted(routed, f.decision.route, f.decision.outbound.name, 0, up, down);
    }
    return { ...this.counters, bytesFromClient, bytesFromServer, ...routed };
  }

  /** The busiest flows by bytes both ways (bytes read from each side so far). */
  busiest(limit: number): TcpFlowSnapshot[] {
    const now = this.now();
    return topN(this.flows, limit, (f) => f.client.bytesRead + f.upstream.bytesRead - f.handshakeBytes()).map((f) => ({
      id: f.id,
      client: f.clientEnd,
      originalDestination: f.destination,
      bytesFromClient: f.client.bytesRead,
      bytesFromServer: f.upstream.bytesRead - f.handshakeBytes(),
      ageMs: now - f.started,
      connected: f.connected(),
    }));
  }

  get acceptPaused(): boolean {
    return this.paused;
  }

  /** Hand libuv a dup of the listening socket and accept from it. */
  private async attach(): Promise<void> {
    const fd = this.deps.sockets.dup(this.listenFd);
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => this.onConnection(client));
    server.on('error', (error: NodeJS.ErrnoException) => this.onAcceptError(error));
    this.server = server;
    this.paused = false;
    await new Promise<void>((resolve) => server.listen({ fd, exclusive: true }, resolve));
  }

  private pauseAccept(): void {
    if (this.paused || this.stopping) return;
    this.paused = true;
    this.counters.acceptPauses++;
    const server = this.server;
    this.server = undefined;
    server?.close();
  }

  private maybeResume(): void {
    if (!this.paused || this.stopping) return;
    // Resume below the cap, not below a lower mark: waiting connections must not sit in the
    // backlog while there is room (with a gap, flows that wait on each other could never finish).
    if (this.flows.size >= this.config.maxConnections) return;
    clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    this.attach().catch((error: unknown) => {
      this.deps.emit({ type: 'error', code: errnoOf(error), message: `tcp listener could not resume accepting: ${(error as Error).message}` });
    });
  }

  private onAcceptError(error: NodeJS.ErrnoException): void {
    const code = error.code ?? 'error';
    if (code === 'EMFILE' || code === 'ENFILE') {
      this.descriptorsExhausted(code);
      return;
    }
    this.deps.emit({ type: 'error', code, message: `tcp accept: ${error.message}` });
  }

  /** Out of descriptors: stop accepting; resume when a flow ends or after a short wait. */
  private descriptorsExhausted(code: string): void {
    increment(this.counters.connectErrors, code);
    this.pauseAccept();
    if (!this.resumeTimer) {
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = undefined;
        this.maybeResume();
      }, C.DESCRIPTOR_RETRY_MS);
      this.resumeTimer.unref();
    }
  }

  /** Stop accepting; flows in progress get up to graceMs to end, then are reset. */
  async stop(graceMs = 0): Promise<StopReport> {
    this.stopping = true;
    clearTimeout(this.resumeTimer);
    const server = this.server;
    this.server = undefined;
    server?.close();
    if (this.listenFd >= 0) {
      this.deps.sockets.close(this.listenFd);
      this.listenFd = -1;
    }
    const inFlight = this.flows.size;
    const deadline = this.now() + graceMs;
    while (this.flows.size > 0 && this.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const forced = this.flows.size;
    for (const flow of [...this.flows]) flow.end('stopped');
    return { completed: inFlight - forced, forced };
  }

  private onConnection(client: net.Socket): void {
    const { family } = this.config;
    const emit = this.deps.emit;
    const clientEnd = endpointOf(family, client.remoteAddress, client.remotePort);
    const destination = endpointOf(family, client.localAddress, client.localPort);
    client.on('error', () => undefined);
    const refused = refusalReason(clientEnd, destination, {
      localAddresses: this.deps.localAddresses(),
      listenPort: this.config.port,
      activeFlows: this.flows.size + this.sniffing,
      maxConnections: this.config.maxConnections,
    });
    if (refused) {
      this.counters.refused[refused]++;
      if (this.flowEvents) emit({ type: 'tcp.refused', client: clientEnd, originalDestination: destination, reason: refused });
      client.resetAndDestroy();
      return;
    }
    const id = this.nextId++;
    this.counters.accepted++;
    if (this.flowEvents) emit({ type: 'tcp.accept', id, client: clientEnd, originalDestination: destination });
    const first = this.routes.decideUnnamed(routeFlowOf(clientEnd, destination));
    if (first !== 'sniff') {
      this.startFlow(client, id, clientEnd, destination, first, undefined, { bytes: Buffer.alloc(0), ended: false });
      return;
    }
    this.sniffing++;
    sniffClient(client, this.sniffTimeoutMs, (outcome, name, early) => {
      this.sniffing--;
      increment(this.counters.sniffs, outcome);
      if (outcome === 'error') {
        increment(this.counters.closed, 'client-error');
        client.resetAndDestroy();
        return;
      }
      this.startFlow(client, id, clientEnd, destination, this.routes.decide(routeFlowOf(clientEnd, destination, name)), name, early);
    });
  }

  /**
   * The flow takes its route's outbound. `early`: bytes sniffing already read from the client
   * (they go upstream first), and whether the client's FIN came with them.
   */
  private startFlow(client: net.Socket, id: number, clientEnd: Endpoint, destination: Endpoint, decision: RouteDecision, name: string | undefined, early: { bytes: Buffer; ended: boolean }): void {
    const { family } = this.config;
    const emit = this.deps.emit;
    const started = this.now();
    const outbound = decision.outbound;
    countRouted(this.counters, decision.route, outbound.name, 1);
    if (this.flowEvents) emit({ type: 'tcp.route', id, originalDestination: destination, ...routeFields(decision), ...(name === undefined ? {} : { name }) });
    if (outbound.kind === 'reject') {
      increment(this.counters.closed, 'rejected');
      if (this.flowEvents) emit({ type: 'tcp.close', id, client: clientEnd, originalDestination: destination, bytesFromClient: 0, bytesFromServer: 0, durationMs: 0, reason: 'rejected', ...routeFields(decision) });
      client.resetAndDestroy();
      return;
    }

    let upstream: net.Socket;
    try {
      const clientFd = fdOf(client);
      let dscp = fixedDscp(this.config.headers ?? {});
      if (this.config.headers?.dscp === 'copy') {
        dscp = this.deps.sockets.savedSynDscp(clientFd) ?? 0;
        this.deps.sockets.setDscp(clientFd, family, dscp);
      }
      client.prependOnceListener('finish', () => this.finOnClose(clientFd));
      upstream = this.openUpstream(clientEnd, outbound, dscp);
    } catch (error) {
      const errno = errnoOf(error);
      increment(this.counters.connectErrors, errno);
      if (errno === 'EMFILE' || errno === 'ENFILE') this.descriptorsExhausted(errno);
      else emit({ type: 'error', code: errno, message: `upstream socket for ${clientEnd.address}: ${(error as Error).message}` });
      client.resetAndDestroy();
      return;
    }

    let ended = false;
    let connected = false;
    let handshakeBytes = 0;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      clearTimeout(connectTimer);
      // Anything but a clean end both ways is passed on as a reset, never as a silent close.
      if (reason !== 'done') {
        if (!client.destroyed) client.resetAndDestroy();
        if (!upstream.destroyed) upstream.resetAndDestroy();
      }
      this.flows.delete(flow);
      this.counters.active = this.flows.size;
      increment(this.counters.closed, reason);
      this.counters.bytesFromClient += client.bytesRead;
      this.counters.bytesFromServer += upstream.bytesRead - handshakeBytes;
      countRouted(this.counters, decision.route, outbound.name, 0, client.bytesRead, upstream.bytesRead - handshakeBytes);
      if (this.flowEvents) {
        emit({
          type: 'tcp.close',
          id,
          client: clientEnd,
          originalDestination: destination,
          bytesFromClient: client.bytesRead,
          bytesFromServer: upstream.bytesRead - handshakeBytes,
          durationMs: this.now() - started,
          reason,
          ...routeFields(decision),
        });
      }
      this.maybeResume();
    };
    const flow: Flow = { id, client, upstream, clientEnd, destination, started, decision, connected: () => connected, handshakeBytes: () => handshakeBytes, end };
    this.flows.add(flow);
    this.counters.active = this.flows.size;
    if (this.flows.size >= this.config.maxConnections) this.pauseAccept();

    const connectTimer = setTimeout(() => {
      increment(this.counters.connectErrors, 'connect-timeout');
      end('connect-timeout');
    }, this.config.connectTimeoutMs);

    const proxy = outbound.kind === 'socks5' || outbound.kind === 'http' ? outbound.proxy : undefined;
    const sniffed = early;
    const onTunnel = (early: Buffer): void => {
      if (ended) return;
      connected = true;
      clearTimeout(connectTimer);
      if (this.flowEvents) emit({ type: 'tcp.connected', id, upstreamLocal: endpointOf(family, upstream.localAddress, upstream.localPort) });
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      if (this.config.keepAliveMs > 0) {
        client.setKeepAlive(true, this.config.keepAliveMs);
        upstream.setKeepAlive(true, this.config.keepAliveMs);
      }
      if (this.config.idleTimeoutMs > 0) {
        // Activity either way touches the client socket (reads from it, or writes to it).
        client.setTimeout(this.config.idleTimeoutMs, () => end('idle-timeout'));
      }
      if (early.length > 0) client.write(early);
      const header = proxyHeaderFor(outbound, clientEnd, destination);
      if (header) upstream.write(header);
      if (sniffed.bytes.length > 0) upstream.write(sniffed.bytes);
      if (sniffed.ended) upstream.end();
      else client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    };
    upstream.once('connect', () => {
      if (!proxy) {
        onTunnel(Buffer.alloc(0));
        return;
      }
      handshakeOverStream(upstream, createHandshake(proxy, destination)).then(
        (result) => {
          handshakeBytes = result.handshakeBytes;
          onTunnel(result.early);
        },
        (failure: HandshakeFailure) => {
          increment(this.counters.connectErrors, failure.errno ?? failure.reason);
          end(failure.reason);
        },
      );
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      const errno = error.code ?? 'error';
      if (!connected) increment(this.counters.connectErrors, errno);
      end(connected ? `upstream-${errno}` : errno);
    });
    client.on('error', (error: NodeJS.ErrnoException) => end(`client-${error.code ?? 'error'}`));
    let closedSides = 0;
    const onClose = (): void => {
      closedSides++;
      if (closedSides === 2) end('done');
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
    const target = proxy?.endpoint ?? destination;
    upstream.connect({ host: target.address, port: target.port });
  }

  /** The upstream socket (upstream-socket.ts), handed to Node; its linger is cleared once its FIN is sent. */
  private openUpstream(client: Endpoint, outbound: ConnectingOutbound, dscp: number | undefined): net.Socket {
    const settings = { upstreamMark: this.config.upstreamMark, ttl: this.config.headers?.ttl };
    const fd = openUpstreamSocket(this.deps.sockets, settings, client, outbound, dscp, () => this.counters.clientPortFallbacks++);
    const socket = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
    socket.prependOnceListener('finish', () => this.finOnClose(fd));
    return socket;
  }

  /** Its FIN is sent: a crash from now on must not turn into a reset toward this peer. */
  private finOnClose(fd: number): void {
    try {
      this.deps.sockets.setResetOnClose(fd, false);
    } catch {
      // closed already: nothing left to reset
    }
  }
}

/** Listener options for the sent headers: accepted sockets inherit DSCP and TTL; `copy` keeps each SYN. */
export function listenerHeaders(headers: SentHeaders): { dscp?: number; ttl?: number; saveSyn?: boolean } {
  const dscp = fixedDscp(headers);
  return { ...(dscp !== undefined ? { dscp } : {}), ...(headers.ttl !== undefined ? { ttl: headers.ttl } : {}), ...(headers.dscp === 'copy' ? { saveSyn: true } : {}) };
}

/** The descriptor under an accepted net.Socket (libuv's; Node exposes it on its handle on Unix). */
function fdOf(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new TproxyError('ERR_SYSCALL', 'accepted socket has no descriptor', {});
  return fd;
}

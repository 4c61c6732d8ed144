/**
 * The backend half of a load balancer (what go-mmproxy does), TCP on the stream engine: accept the
 * balancer's connection on an ordinary socket, from an allowed source only; read its PROXY header
 * (v1 or v2) within the header timeout; connect to the backend FROM the client's address and port
 * that the header names (IP_TRANSPARENT + IP_FREEBIND, SO_MARK for the policy rule that brings the
 * backend's replies back to this socket), then relay both ways. The client's bytes that came with
 * the header go to the backend first.
 *
 * Anything refused (a source not allowed, a header that is not one, too long or too slow) is reset,
 * counted by reason and reported once; not one byte of it reaches a backend.
 *
 * Per-flow events (mmproxy.close, mmproxy.local, and the refusals of sources not allowed: what the
 * log shows at debug level only) are emitted while `flowEvents` asks, as on the TPROXY engines;
 * the counters move either way. A refused header (the balancer's misconfiguration) is always reported.
 *
 * LOCAL headers (and v1 UNKNOWN / v2 AF_UNSPEC, which carry no client) are the balancer's health
 * checks: relayed to the health target from this host's address when one is set, else closed
 * cleanly after the header.
 */
import net from 'node:net';
import { errnoOf, TproxyError } from '../../core/errors.js';
import type { Family } from '../../core/net/constants.js';
import { AllowedSources } from './allowed-sources.js';
import { normalizeAddress, type Endpoint } from '../../core/net/sockaddr.js';
import type { MmproxyEndpoint } from '../../core/config/sections/mmproxy.js';
import type { ProxyHeader } from '../../core/proxy-protocol/header.js';
import type { DescriptorBudget } from '../../sys/descriptor-budget.js';
import type { SocketApi } from '../../sys/socket.js';
import type { EventSink } from '../events.js';
import { count, emptyMmproxyCounters, type MmproxyCounters } from './counters.js';
import { readProxyHeader, type HeaderRejected } from './header-reader.js';
import { openBackendSocket } from './backend-socket.js';

export interface MmproxyTcpConfig {
  readonly name: string;
  readonly listen: readonly MmproxyEndpoint[];
  readonly allowedSources: readonly string[];
  /** Fixed backend per family; absent: the header's destination. */
  readonly backend4?: MmproxyEndpoint;
  readonly backend6?: MmproxyEndpoint;
  readonly headerTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly healthTarget?: MmproxyEndpoint;
  readonly upstreamMark: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

export interface MmproxyTcpDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
  /** The process's descriptors: each connection takes its two (balancer side and backend side) at accept. */
  readonly budget?: DescriptorBudget;
  /** Per-flow events from the start (see above); setFlowEvents switches them in place. */
  readonly flowEvents: boolean;
}

/**
 * Whether a refusal is a per-flow event (gated by flowEvents): a source not allowed is a scan (the
 * log's debug level); a bad header is the balancer's misconfiguration, always reported.
 */
export function isFlowRefusal(reason: string): boolean {
  return reason === 'source-not-allowed';
}

/** The balancer's connection and the backend connection. */
const DESCRIPTORS_PER_CONNECTION = 2;

const familyOf = (address: string): Family => (net.isIPv4(address) ? 4 : 6);

/**
 * A listening socket handed from a listener to the one that replaces it on a reload: a net.Server
 * on the stream engine, a descriptor on the splice engine (mmproxy/splice-relay.ts).
 */
export type HandedListener = net.Server | number;

/** A listen endpoint as a key: the same text on a reload is the same socket. */
export function endpointKey(e: MmproxyEndpoint): string {
  return `${e.address}|${e.port}`;
}

export class MmproxyTcpRelay {
  readonly counters: MmproxyCounters;
  private readonly allowed: AllowedSources;
  /** Listening sockets by endpointKey. */
  private readonly servers = new Map<string, net.Server>();
  private readonly open = new Set<net.Socket>();
  private idle: (() => void) | undefined;
  private flowEvents: boolean;

  /** `counters`: those of the listener this one replaces on a reload (they go on counting). */
  constructor(
    private readonly config: MmproxyTcpConfig,
    private readonly deps: MmproxyTcpDeps,
    counters?: MmproxyCounters,
  ) {
    this.allowed = new AllowedSources(config.allowedSources, `mmproxy ${config.name}: allowedSources`);
    this.counters = counters ?? emptyMmproxyCounters();
    this.flowEvents = deps.flowEvents;
  }

  /** Emit the per-flow events from now on, or stop (connections in progress included). */
  setFlowEvents(on: boolean): void {
    this.flowEvents = on;
  }

  /** Listen on every address; a failure closes what was opened and throws with the address. */
  async start(): Promise<Endpoint[]> {
    await this.bind(new Set());
    return this.adopt(new Map());
  }

  /** The keys of the endpoints this listener is configured for. */
  keys(): string[] {
    return this.config.listen.map(endpointKey);
  }

  /**
   * Listen on the endpoints not in `skip` (those another listener hands over, see adopt). A failure
   * closes what this call opened and throws with the address; nothing else changes.
   */
  async bind(skip: ReadonlySet<string>): Promise<void> {
    const opened: string[] = [];
    for (const at of this.config.listen) {
      const key = endpointKey(at);
      if (skip.has(key) || this.servers.has(key)) continue;
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: at.address, port: at.port, ipv6Only: true }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        server.close();
        for (const k of opened) {
          this.servers.get(k)?.close();
          this.servers.delete(k);
        }
        throw new TproxyError('ERR_SYSCALL', `mmproxy ${this.config.name}: cannot listen on ${at.address}:${at.port}: ${(error as Error).message}`, { errno: errnoOf(error) });
      }
      this.servers.set(key, server);
      opened.push(key);
    }
  }

  /**
   * Take over `handed` (listening sockets of the listener this one replaces, by key) and start
   * accepting on every socket: from here new connections are this listener's. Cannot fail.
   */
  adopt(handed: ReadonlyMap<string, HandedListener>): Endpoint[] {
    for (const [key, server] of handed) if (typeof server !== 'number') this.servers.set(key, server);
    const locals: Endpoint[] = [];
    for (const at of this.config.listen) {
      const server = this.servers.get(endpointKey(at));
      if (!server) continue;
      server.removeAllListeners('connection');
      server.removeAllListeners('error');
      server.on('connection', (socket: net.Socket) => this.onConnection(socket));
      server.on('error', (error: NodeJS.ErrnoException) => this.deps.emit({ type: 'error', code: error.code ?? 'error', message: `mmproxy ${this.config.name} accept: ${error.message}` }));
      const a = server.address() as net.AddressInfo;
      const local = { family: familyOf(a.address), address: a.address, port: a.port };
      locals.push(local);
      this.deps.emit({ type: 'mmproxy.listening', listener: this.config.name, local });
    }
    return locals;
  }

  /** Give up the listening socket of `key` (to the listener that replaces this one), if this one has it. */
  release(key: string): HandedListener | undefined {
    const server = this.servers.get(key);
    this.servers.delete(key);
    return server;
  }

  /**
   * Stop accepting (the sockets not handed over are closed) and let the flows in progress finish;
   * resolves when the last one has ended.
   */
  drain(): Promise<void> {
    for (const server of this.servers.values()) server.close();
    this.servers.clear();
    if (this.open.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => (this.idle = resolve));
  }

  /** Flows (and connections still reading their header) in progress. */
  get connections(): number {
    return this.open.size;
  }

  /** Stop accepting and reset every connection still open. */
  async stop(): Promise<void> {
    const closing = [...this.servers.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    this.servers.clear();
    for (const s of this.open) s.resetAndDestroy();
    await Promise.all(closing);
  }

  private track(socket: net.Socket): void {
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      if (this.open.size === 0) this.idle?.();
    });
  }

  private onConnection(client: net.Socket): void {
    client.on('error', () => undefined);
    if (client.remoteAddress === undefined) {
      // Reset by the balancer between the kernel's accept and this callback (Node then knows no
      // peer): nothing to read or to answer. Counted, never fatal.
      count(this.counters.rejected, 'closed-before-header');
      client.destroy();
      return;
    }
    this.track(client);
    const source = normalizeAddress(client.remoteAddress);
    const balancer: Endpoint = { family: familyOf(source), address: source, port: client.remotePort ?? 0 };
    // Both descriptors of the connection before anything else; given back when the balancer's side
    // closes (the backend side closes with it, at most a moment later: accounting, not a lock).
    const { budget } = this.deps;
    if (budget) {
      if (!budget.acquire('mmproxy', DESCRIPTORS_PER_CONNECTION)) {
        this.reject(client, balancer, 'descriptor-limit');
        return;
      }
      client.once('close', () => budget.release('mmproxy', DESCRIPTORS_PER_CONNECTION));
    }
    if (!this.allowed.has(source)) {
      this.reject(client, balancer, 'source-not-allowed');
      return;
    }
    readProxyHeader(client, { maxV2Bytes: this.config.maxHeaderBytes }, this.config.headerTimeoutMs).then(
      ({ header, early }) => this.relay(client, balancer, header, early),
      (error: HeaderRejected) => this.reject(client, balancer, error.reason),
    );
  }

  private reject(client: net.Socket, balancer: Endpoint, reason: string): void {
    count(this.counters.rejected, reason);
    if (this.flowEvents || !isFlowRefusal(reason)) this.deps.emit({ type: 'mmproxy.reject', listener: this.config.name, balancer, reason });
    client.resetAndDestroy();
  }

  private relay(client: net.Socket, balancer: Endpoint, header: ProxyHeader, early: Buffer): void {
    const addresses = header.command === 'proxy' ? header.addresses : undefined;
    if (!addresses) {
      this.counters.headersLocal++;
      if (this.flowEvents) this.deps.emit({ type: 'mmproxy.local', listener: this.config.name, balancer });
      const health = this.config.healthTarget;
      if (!health) {
        // Closed cleanly after the header; a balancer that keeps its side open is cut after the header timeout.
        client.setTimeout(this.config.headerTimeoutMs, () => client.destroy());
        client.end();
        client.resume();
        return;
      }
      this.pipe(client, balancer, undefined, { family: familyOf(health.address), ...health }, early);
      return;
    }
    this.counters.headersProxy++;
    const { source, destination } = addresses;
    const fixed = source.family === 4 ? this.config.backend4 : this.config.backend6;
    const backend: Endpoint = fixed ? { family: familyOf(fixed.address), ...fixed } : destination;
    if (backend.family !== source.family) {
      // Only a fixed backend can differ (the header's addresses share a family): a client cannot be a source toward it.
      this.reject(client, balancer, 'backend-family');
      return;
    }
    this.pipe(client, balancer, source, backend, early);
  }

  /**
   * Connect to `backend` (from `from` when given, transparently) and relay both ways. A connect
   * refused with EADDRNOTAVAIL from the client's own port (that address and port toward this
   * backend is a connection of ours still closing: the balancer reuses client ports quickly) is
   * tried once more from the client's address with a port the kernel picks, as on the splice
   * engine; a port taken at bind (EADDRINUSE) already falls back so in openBackendSocket.
   */
  private pipe(client: net.Socket, balancer: Endpoint, from: Endpoint | undefined, backend: Endpoint, early: Buffer): void {
    let upstream: net.Socket;
    try {
      upstream = this.backendSocket(backend, from, false);
    } catch (error) {
      this.backendSocketFailed(from, error);
      client.resetAndDestroy();
      return;
    }
    this.counters.active++;
    const started = Date.now();
    let ended = false;
    let connected = false;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      if (reason !== 'done') {
        if (!client.destroyed) client.resetAndDestroy();
        if (!upstream.destroyed) upstream.resetAndDestroy();
      }
      this.counters.active--;
      count(this.counters.closed, reason);
      const bytesFromClient = client.bytesRead;
      const bytesFromBackend = upstream.bytesRead;
      this.counters.bytesFromClient += bytesFromClient;
      this.counters.bytesFromBackend += bytesFromBackend;
      if (this.flowEvents) this.deps.emit({ type: 'mmproxy.close', listener: this.config.name, balancer, ...(from ? { headerSource: from } : {}), backend, bytesFromClient, bytesFromBackend, durationMs: Date.now() - started, reason });
    };
    const timer = setTimeout(() => {
      count(this.counters.connectErrors, 'connect-timeout');
      end('connect-timeout');
    }, this.config.connectTimeoutMs);
    let closedSides = 0;
    const onClose = (): void => {
      if (++closedSides === 2) end('done');
    };
    client.on('error', (error: NodeJS.ErrnoException) => end(`client-${error.code ?? 'error'}`));
    client.once('close', onClose);
    const attach = (socket: net.Socket, anyPort: boolean): void => {
      this.track(socket);
      socket.once('connect', () => {
        connected = true;
        clearTimeout(timer);
        client.setNoDelay(true);
        socket.setNoDelay(true);
        if (this.config.idleTimeoutMs > 0) client.setTimeout(this.config.idleTimeoutMs, () => end('idle-timeout'));
        if (early.length > 0) socket.write(early);
        client.pipe(socket);
        socket.pipe(client);
        client.resume();
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        const errno = error.code ?? 'error';
        if (!connected && !ended && errno === 'EADDRNOTAVAIL' && from && !anyPort) {
          try {
            upstream = this.backendSocket(backend, from, true);
          } catch (retryError) {
            this.backendSocketFailed(from, retryError);
            end(errnoOf(retryError));
            return;
          }
          attach(upstream, true);
          upstream.connect({ host: backend.address, port: backend.port });
          return;
        }
        if (!connected) count(this.counters.connectErrors, errno);
        end(connected ? `backend-${errno}` : errno);
      });
      // The socket given up for a retry closes too: only the one in use is the flow's backend side.
      socket.once('close', () => {
        if (socket === upstream) onClose();
      });
    };
    attach(upstream, false);
    upstream.connect({ host: backend.address, port: backend.port });
  }

  /** A backend socket bound (from the client's address and port, or any port of it), not connected; throws TproxyError. */
  private backendSocket(backend: Endpoint, from: Endpoint | undefined, anyPort: boolean): net.Socket {
    return new net.Socket({ fd: openBackendSocket(this.deps.sockets, this.config.upstreamMark, backend.family, from, anyPort), allowHalfOpen: true, readable: true, writable: true });
  }

  /** Counted as a connect error and reported. */
  private backendSocketFailed(from: Endpoint | undefined, error: unknown): void {
    count(this.counters.connectErrors, errnoOf(error));
    this.deps.emit({ type: 'error', code: errnoOf(error), message: `mmproxy ${this.config.name}: backend socket from ${from?.address ?? 'this host'}: ${(error as Error).message}` });
  }
}

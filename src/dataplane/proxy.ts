/**
 * The proxy: transparent TCP listeners (in worker processes, or in this process with
 * `tcpWorkers: 0`) and the UDP relay, started and stopped together. A failure at start undoes
 * what was started.
 */
import os from 'node:os';
import type { Family, Transport } from '../core/net/constants.js';
import type { Endpoint } from '../core/net/sockaddr.js';
import { TproxyError } from '../core/errors.js';
import { formatUpstreamProxy, type UpstreamProxy } from '../core/upstream/proxy-url.js';
import type { RoutingConfig } from '../core/route/config.js';
import type { Outbound } from '../core/route/outbound.js';
import { SocketApi } from '../sys/socket.js';
import type { DescriptorBudget } from '../sys/descriptor-budget.js';
import { fileLimit, processDescriptorBudget } from '../sys/limits.js';
import { OPERATOR_CLOSE_REASON, type EventSink, type UpstreamMode } from './events.js';
import type { SentHeaders } from './headers.js';
import type { RoutingUpdate } from './routing.js';
import { localAddressCache } from './local-addresses.js';
import { expectedTcpCapacity, reserveTcpFlows, tcpCapacity, type TcpCapacity } from './tcp/capacity.js';
import { emptyTcpCounters, sumTcpCounters, type TcpCounters } from './tcp/counters.js';
import { createTcpEngine, type TcpEngine, type TcpEngineKind } from './tcp/engines.js';
import type { UdpEngineKind } from '../sys/datagram-io.js';
import type { TcpFlowSnapshot } from './tcp/flows.js';
import { TcpWorkerPool } from './tcp/pool.js';
import type { StopReport, TcpRelayConfig } from './tcp/relay.js';
import { sumUdpCounters, type UdpCounters } from './udp/counters.js';
import type { UdpMapping, UdpSessionSnapshot } from './udp/protocol.js';
import { UdpRelay } from './udp/relay.js';

export interface ProxyConfig {
  readonly port: number;
  /** Listen address per family (absent: any address of the host). */
  readonly listenAddresses: { readonly 4?: string; readonly 6?: string };
  readonly families: readonly Family[];
  readonly transports: readonly Transport[];
  readonly upstream: UpstreamMode;
  readonly upstreamMark: number;
  /** TCP flows go through this proxy (SOCKS5 or HTTP CONNECT); needs `upstream: 'direct'` and TCP only. */
  readonly upstreamProxy?: UpstreamProxy;
  /**
   * Routes and outbounds of TCP flows. Absent: every flow takes the outbound upstream and
   * upstreamProxy describe (the one-outbound listener of before routes).
   */
  readonly routing?: RoutingConfig;
  /** How long a TCP flow waits for its first bytes when a route matches on names (default 300). */
  readonly sniffTimeoutMs?: number;
  readonly connectTimeoutMs: number;
  readonly tcpIdleTimeoutMs: number;
  readonly tcpKeepAliveMs: number;
  /** Concurrent TCP flows per worker; accepting pauses at the cap. */
  readonly maxConnections: number;
  /** TCP worker processes (SO_REUSEPORT); 0 runs TCP in this process. */
  readonly tcpWorkers: number;
  /** `splice`: bytes move kernel to kernel (default); `stream`: Node streams. */
  readonly tcpEngine: TcpEngineKind;
  /** How UDP datagrams move (sys/datagram-io.ts). */
  readonly udpEngine: UdpEngineKind;
  readonly udpIdleTimeoutMs: number;
  readonly maxUdpSessions: number;
  /** Report every flow as an event (debug logging); counters are kept regardless. Switched at run time by setFlowEvents. */
  readonly flowEvents: boolean;
  /** UDP mapping: endpoint-dependent (default) or endpoint-independent (full cone). */
  readonly udpMapping: UdpMapping;
  /** DSCP and TTL of every packet the proxy sends for this listener (TCP and UDP, both ways); absent: the kernel's defaults. */
  readonly headers?: SentHeaders;
}

/**
 * TCP worker processes for `auto`: one per core but one. That core is left to the kernel's packet
 * processing (softirq) and the UDP thread: on two shared cores, one worker did about 1.7x the new
 * connections per second of two (interleaved bench runs; cross-process wake-ups), and a worker's
 * engine thread is idle half the time.
 */
export function defaultTcpWorkers(cores: number): number {
  return Math.max(1, cores - 1);
}

export const DEFAULT_PROXY_CONFIG: ProxyConfig = {
  port: 8000,
  listenAddresses: {},
  families: [4, 6],
  transports: ['tcp', 'udp'],
  upstream: 'direct',
  upstreamMark: 0x2,
  connectTimeoutMs: 10_000,
  tcpIdleTimeoutMs: 600_000,
  tcpKeepAliveMs: 0,
  maxConnections: 100_000,
  tcpWorkers: defaultTcpWorkers(os.availableParallelism()),
  tcpEngine: 'splice',
  udpEngine: 'epoll',
  udpIdleTimeoutMs: 60_000,
  maxUdpSessions: 65_536,
  flowEvents: false,
  udpMapping: 'endpoint-dependent',
};

/** What a reload can change in a running listener without restarting it (see Proxy.setRouting). */
export const ROUTING_SETTINGS = ['routing', 'sniffTimeoutMs', 'upstream', 'upstreamProxy'] as const;
export type RoutingSettings = Pick<ProxyConfig, (typeof ROUTING_SETTINGS)[number]>;

export function routingSettingsOf(config: ProxyConfig): RoutingSettings {
  return {
    upstream: config.upstream,
    ...(config.routing ? { routing: config.routing } : {}),
    ...(config.sniffTimeoutMs !== undefined ? { sniffTimeoutMs: config.sniffTimeoutMs } : {}),
    ...(config.upstreamProxy ? { upstreamProxy: config.upstreamProxy } : {}),
  };
}

export interface ProxyDeps {
  readonly sockets?: SocketApi;
  readonly emit: EventSink;
  /**
   * This process's descriptors, shared by every listener's UDP sessions and in-process TCP flows
   * and by the daemon's child processes and servers. Absent: the proxy makes one for itself (a
   * program with one proxy and nothing else, such as a test or the bench).
   */
  readonly budget?: DescriptorBudget;
  /**
   * The UDP relay failed for good (its thread kept dying): traffic sent to this listener's port is
   * black-holed, so the owner must stop and remove the rules. Absent: only reported as an event.
   */
  readonly onFailure?: (error: Error) => void;
}

export interface ProxyCounters {
  readonly tcp: TcpCounters;
  /** Present when UDP is relayed. */
  readonly udp?: UdpCounters;
}

/** Counters of several proxies (listeners) added up. */
export function sumProxyCounters(list: readonly ProxyCounters[]): ProxyCounters {
  const tcp = sumTcpCounters(list.map((c) => c.tcp));
  const udp = list.flatMap((c) => (c.udp ? [c.udp] : []));
  return udp.length > 0 ? { tcp, udp: sumUdpCounters(udp) } : { tcp };
}

/**
 * Whether a listener serves, as readiness judges it: its TCP side accepts (the in-process engine
 * started, or every TCP worker process running) and its UDP relay loop runs.
 */
export interface ProxyHealth {
  readonly tcp?: { readonly accepting: boolean; readonly workers: { readonly running: number; readonly wanted: number } };
  readonly udp?: { readonly loopRunning: boolean };
}

export class Proxy {
  private pool: TcpWorkerPool | undefined;
  private tcp: TcpEngine | undefined;
  private udp: UdpRelay | undefined;
  /** The engines' last counts, kept once they are stopped (the daemon reports them after stop). */
  private final: ProxyCounters | undefined;
  private readonly sockets: SocketApi;
  private readonly budget: DescriptorBudget;
  /** Gives back the descriptors taken for in-process TCP flows. */
  private releaseTcp: (() => void) | undefined;
  private tcpCap = 0;
  private current: ProxyConfig;

  constructor(
    config: ProxyConfig,
    private readonly deps: ProxyDeps,
  ) {
    this.current = config;
    this.sockets = deps.sockets ?? new SocketApi();
    this.budget = deps.budget ?? processDescriptorBudget();
    checkUpstreamProxy(config);
  }

  /** The configuration in force (flowEvents follows setFlowEvents). */
  get config(): ProxyConfig {
    return this.current;
  }

  /**
   * Report every flow (TCP and UDP) as events from now on, or stop: listeners, flows, UDP sessions
   * and TCP workers go on untouched. Resolves once every engine has it in force (a TCP worker that
   * does not answer within 2 s is not waited for; one started later gets it at its start).
   */
  async setFlowEvents(on: boolean): Promise<void> {
    this.current = { ...this.current, flowEvents: on };
    this.tcp?.setFlowEvents(on);
    this.udp?.setFlowEvents(on);
    await this.pool?.setFlowEvents(on);
  }

  /**
   * A reload's routes and outbounds: new flows (TCP) and new UDP sessions take them from now on;
   * flows and sessions in progress keep the route and outbound they started with, and the
   * per-route and per-outbound counters go on. Listeners, workers and sessions are untouched.
   * Resolves once every engine has it in force (a TCP worker that does not answer within 2 s is
   * not waited for; one started later gets it at its start). Rejects when the UDP relay cannot
   * carry the new routing; call it again with the old settings to go back.
   */
  async setRouting(settings: RoutingSettings): Promise<void> {
    // The optional ones absent from settings are absent from the result too.
    const { routing: _routing, sniffTimeoutMs: _sniff, upstreamProxy: _proxy, ...rest } = this.current;
    const next: ProxyConfig = { ...rest, ...settings };
    checkUpstreamProxy(next);
    const update: RoutingUpdate = { routing: flowRouting(next), sniffTimeoutMs: next.sniffTimeoutMs ?? 300 };
    // UDP first: it is the one that can refuse (routing it cannot carry), before TCP changes.
    await this.udp?.setRouting(update);
    this.current = next;
    await Promise.all([this.tcp?.setRouting(update), this.pool?.setRouting(update)]);
  }

  private relayConfig(): Omit<TcpRelayConfig, 'family'> {
    const c = this.config;
    return {
      port: c.port,
      addresses: c.listenAddresses,
      routing: flowRouting(c),
      sniffTimeoutMs: c.sniffTimeoutMs ?? 300,
      upstreamMark: c.upstreamMark,
      connectTimeoutMs: c.connectTimeoutMs,
      idleTimeoutMs: c.tcpIdleTimeoutMs,
      keepAliveMs: c.tcpKeepAliveMs,
      backlog: 4096,
      reusePort: c.tcpWorkers > 0,
      maxConnections: c.maxConnections,
      flowEvents: c.flowEvents,
      ...(c.headers ? { headers: c.headers } : {}),
    };
  }

  async start(): Promise<Endpoint[]> {
    this.final = undefined;
    const locals: Endpoint[] = [];
    try {
      if (this.config.transports.includes('tcp')) {
        if (this.config.tcpWorkers > 0) {
          this.pool = new TcpWorkerPool(
            { engine: this.config.tcpEngine, families: this.config.families, relay: this.relayConfig(), countersIntervalMs: 1000, workers: this.config.tcpWorkers, maxRestartsPerMinute: 10 },
            { sockets: this.sockets, emit: this.deps.emit },
          );
          locals.push(...(await this.pool.start()));
        } else {
          // TCP in this process: half of what is left when UDP sessions need descriptors here too.
          const { maxConnections, release } = reserveTcpFlows(this.budget, this.config.maxConnections, this.config.tcpEngine, this.config.transports.includes('udp') ? 0.5 : 1);
          this.releaseTcp = release;
          this.tcpCap = maxConnections;
          this.tcp = createTcpEngine(this.config.tcpEngine, this.config.families, { ...this.relayConfig(), maxConnections }, { sockets: this.sockets, emit: this.deps.emit, localAddresses: localAddressCache() });
          locals.push(...(await this.tcp.start()));
        }
      }
      if (this.config.transports.includes('udp')) {
        this.udp = new UdpRelay(
          {
            families: this.config.families,
            addresses: this.config.listenAddresses,
            port: this.config.port,
            upstream: this.config.upstream,
            routing: flowRouting(this.config),
            ...(this.config.sniffTimeoutMs !== undefined ? { sniffTimeoutMs: this.config.sniffTimeoutMs } : {}),
            upstreamMark: this.config.upstreamMark,
            idleTimeoutMs: this.config.udpIdleTimeoutMs,
            maxSessions: this.config.maxUdpSessions,
            mapping: this.config.udpMapping,
            flowEvents: this.config.flowEvents,
            ...(this.config.headers ? { headers: this.config.headers } : {}),
            engine: this.config.udpEngine,
          },
          { sockets: this.sockets, emit: this.deps.emit, budget: this.budget, ...(this.deps.onFailure ? { onFailure: this.deps.onFailure } : {}) },
        );
        locals.push(...(await this.udp.start()));
      }
    } catch (error) {
      await this.stop(0);
      throw error;
    }
    return locals;
  }

  /** The pids of the TCP worker processes (empty when TCP runs in this process). */
  workerPids(): number[] {
    return this.pool?.pids() ?? [];
  }

  /** The TCP connection cap in force per worker (or for this process). */
  maxConnectionsPerWorker(): number {
    return this.tcpCapacity().perWorker;
  }

  /** The cap in force and why: what the workers (or this process's budget) gave, under the file limit. */
  tcpCapacity(): TcpCapacity {
    const limit = fileLimit().soft;
    const inForce = this.pool ? this.pool.maxConnectionsPerWorker : this.tcpCap;
    return inForce > 0 ? tcpCapacity(this.config.maxConnections, inForce, limit, this.config.tcpEngine) : expectedTcpCapacity(this.config.maxConnections, limit, this.config.tcpEngine);
  }

  counters(): ProxyCounters {
    if (this.final) return this.final;
    const tcp = this.pool ? this.pool.counters() : (this.tcp?.counters() ?? emptyTcpCounters());
    const udp = this.udp?.counters();
    return udp ? { tcp, udp } : { tcp };
  }

  /** What readiness needs to know: TCP accepting (workers running as configured), UDP loop running. */
  health(): ProxyHealth {
    const c = this.config;
    const running = this.pool?.pids().length ?? 0;
    return {
      ...(c.transports.includes('tcp') ? { tcp: { accepting: c.tcpWorkers > 0 ? this.pool !== undefined && running === c.tcpWorkers : this.tcp !== undefined, workers: { running, wanted: c.tcpWorkers } } } : {}),
      ...(c.transports.includes('udp') ? { udp: { loopRunning: this.udp?.running() ?? false } } : {}),
    };
  }

  /** TCP worker processes running now, and how many were started to replace one that died. */
  workers(): { readonly running: number; readonly restarts: number } {
    return { running: this.pool?.pids().length ?? 0, restarts: this.pool?.workerRestarts() ?? 0 };
  }

  /**
   * Counters now (TCP workers are asked, bytes of flows in progress included) and the busiest TCP
   * flows by bytes both ways (`limit` of them, 0 for none). counters() gives what the workers last
   * reported (once a second) without asking.
   */
  async snapshot(limit: number): Promise<{ readonly counters: ProxyCounters; readonly flows: readonly TcpFlowSnapshot[] }> {
    const tcp = this.pool ? await this.pool.snapshot(limit) : this.tcp ? await this.tcp.snapshot(limit) : { counters: emptyTcpCounters(), flows: [] };
    const udp = this.udp?.counters();
    return { counters: udp ? { tcp: tcp.counters, udp } : { tcp: tcp.counters }, flows: tcp.flows };
  }

  /**
   * Reset TCP flow `id` toward both peers (an operator closed it; counted and reported closed as
   * OPERATOR_CLOSE_REASON). `pid`: the worker process that relays it (flow ids are per worker;
   * absent when TCP runs in this process). False when no such flow is in progress.
   */
  async closeTcpFlow(id: number, pid?: number): Promise<boolean> {
    if (this.pool) return pid === undefined ? false : this.pool.closeFlow(pid, id, OPERATOR_CLOSE_REASON);
    return pid === undefined && this.tcp ? this.tcp.closeFlow(id, OPERATOR_CLOSE_REASON) : false;
  }

  /** The `limit` busiest UDP sessions in progress with their bytes now; none without UDP. */
  udpSessions(limit: number): Promise<readonly UdpSessionSnapshot[]> {
    return this.udp ? this.udp.sessions(limit) : Promise.resolve([]);
  }

  /** End UDP session `id` (an operator closed it; counted and reported closed as OPERATOR_CLOSE_REASON). False when it is not in progress. */
  closeUdpSession(id: number): Promise<boolean> {
    return this.udp ? this.udp.closeSession(id) : Promise.resolve(false);
  }

  /**
   * Stop accepting, let TCP flows finish for up to graceMs, then reset the rest. Called again while
   * flows drain (a listener removed by a reload, then the daemon stops), a shorter grace cuts the
   * wait short.
   */
  async stop(graceMs = 5000): Promise<StopReport> {
    const udp = this.udp;
    this.udp = undefined;
    const pool = this.pool;
    const tcp = this.tcp;
    const [reports] = await Promise.all([Promise.all([...(tcp ? [tcp.stop(graceMs)] : []), ...(pool ? [pool.stop(graceMs)] : [])]), udp?.stop()]);
    // A second stop (a shorter grace while draining) finds the engines already taken: it keeps
    // what the first one recorded for them.
    const tcpCounters = pool ? pool.counters() : (tcp?.counters() ?? this.final?.tcp ?? emptyTcpCounters());
    const udpCounters = udp?.counters() ?? this.final?.udp;
    this.final = udpCounters ? { tcp: tcpCounters, udp: udpCounters } : { tcp: tcpCounters };
    if (this.tcp === tcp) {
      this.tcp = undefined;
      this.releaseTcp?.();
      this.releaseTcp = undefined;
    }
    return reports.reduce((a, r) => ({ completed: a.completed + r.completed, forced: a.forced + r.forced }), { completed: 0, forced: 0 });
  }
}

/** The routing of flows: the configured one, or the single outbound upstream and upstreamProxy describe. */
export function flowRouting(config: ProxyConfig): RoutingConfig {
  if (config.routing) return config.routing;
  const proxy = config.upstreamProxy;
  const defaultOutbound: Outbound = proxy ? { name: `upstream-proxy`, kind: proxy.protocol, proxy } : { name: config.upstream, kind: config.upstream };
  return { listener: 'main', defaultOutbound, outbounds: [], lists: [], routes: [] };
}

/**
 * An upstream proxy carries flows from this host's address. A SOCKS5 proxy carries UDP too (UDP
 * ASSOCIATE); an HTTP one cannot: relaying UDP straight to its destination instead would silently
 * bypass the proxy a user chose (a leak), so it is refused.
 */
function checkUpstreamProxy(config: ProxyConfig): void {
  const proxy = config.upstreamProxy;
  if (!proxy) return;
  const name = formatUpstreamProxy(proxy);
  if (config.upstream !== 'direct') {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `upstream mode ${config.upstream} cannot be combined with the upstream proxy ${name}: flows through a proxy leave from this host's address (use --upstream direct)`, { upstream: config.upstream });
  }
  if (proxy.protocol === 'http' && config.transports.includes('udp')) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `UDP cannot go through the upstream proxy ${name} (HTTP CONNECT carries TCP only): intercept TCP only (no udp: in --intercept), or use a socks5:// proxy`, { transports: config.transports });
  }
}

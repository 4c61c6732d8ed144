/**
 * What an operator sees of a running daemon: the metrics endpoint and the admin socket, both
 * opt-in, both answered from the listeners' counters and the kernel's rule counters read at that
 * moment (nothing is polled between requests). Also the event sink that counts reported errors and
 * notes each listener's sockets.
 *
 * It reads the daemon through OperationsSource: the listeners running now (each one Proxy, by
 * name) and the rules applied now, so listeners and rules that change at run time are followed.
 */
import type { TcpCapacity } from '../dataplane/tcp/capacity.js';
import type { Transport } from '../core/net/constants.js';
import type { Endpoint } from '../core/net/sockaddr.js';
import type { RulesPlan } from '../core/rules/planned.js';
import type { RulesStatus } from '../control/apply.js';
import type { BackendName } from '../control/backend.js';
import type { MmproxyCounters } from '../dataplane/mmproxy/counters.js';
import type { ProxyCounters, ProxyHealth } from '../dataplane/proxy.js';
import { increment } from '../dataplane/tcp/counters.js';
import { busiestFlows, type TcpFlowSnapshot } from '../dataplane/tcp/flows.js';
import { TproxyError } from '../core/errors.js';
import { ADMIN_MAX_CONNECTIONS, request, serveAdminSocket, type AdminEndpoint } from '../sys/admin-socket.js';
import type { DescriptorBudget, DescriptorConsumer } from '../sys/descriptor-budget.js';
import { METRICS_MAX_CONNECTIONS, serveMetrics, type MetricsEndpoint } from '../sys/metrics-http.js';
import type { Logger } from './log.js';
import type { DaemonEvent } from './events.js';
import { answer, maskSecrets, tcpLimitsOf, resultOf, type AdminRequest, type DaemonConfig, type DaemonStatus, type MmproxyStatusView, type PingResult, type RulesView } from './admin-protocol.js';
import { rulesConfigOf } from '../core/config/rules-of.js';
import type { TproxyConfig } from '../core/config/tproxy-config.js';
import { formatListenAddress, type ListenAddress } from '../core/config/listen-address.js';
import { metricValues, type MetricsSnapshot, type RulesSnapshot } from './metric-families.js';
import type { Dashboard } from './dashboard/dashboard.js';
import { dashboardHandler, loadAssets } from './dashboard/http.js';
import { judgeReadiness, readinessText, upstreamProxiesOf, type Readiness, type UpstreamReachability } from './readiness.js';
import { probeTcp } from '../sys/tcp-probe.js';

/** The name of the listener when the daemon runs one unnamed (the configuration's default). */
export const DEFAULT_LISTENER = 'main';

/** What operations needs of one Proxy (dataplane/proxy.ts has all of it). */
export interface OperatedProxy {
  snapshot(limit: number): Promise<{ readonly counters: ProxyCounters; readonly flows: readonly TcpFlowSnapshot[] }>;
  workers(): { readonly running: number; readonly restarts: number };
  workerPids(): number[];
  tcpCapacity(): TcpCapacity;
  health(): ProxyHealth;
}

export interface OperatedListener {
  readonly name: string;
  readonly proxy: OperatedProxy;
}

/** Our kernel rules as applied now, and what reads them back. */
export interface ManagedRules {
  readonly plan: RulesPlan;
  readonly backend: BackendName;
  readonly controller: { status(plan: RulesPlan): Promise<RulesStatus> };
}

export interface OperationsSource {
  listeners(): readonly OperatedListener[];
  /** Undefined when this daemon does not manage rules. */
  rules(): ManagedRules | undefined;
  /** The configuration in force (changes on a reload). */
  config(): TproxyConfig;
  /** The mmproxy listeners' counters, by name (absent: none run here). */
  mmproxy?(): Readonly<Record<string, MmproxyCounters>>;
  /** The mmproxy listeners for status (absent: none run here). */
  mmproxyStatus?(): MmproxyStatusView;
}

export interface OperationsOptions {
  readonly metricsAddress?: ListenAddress;
  readonly adminSocket?: string;
  readonly log: Logger;
  readonly version: string;
  readonly engine: string;
  /** The process's descriptors: each server takes its listener and its connections at start. */
  readonly budget?: DescriptorBudget;
  /** How the daemon was started (the admin socket's `config` answer repeats them, secrets masked). */
  readonly argv?: readonly string[];
  readonly configFile?: string;
  /**
   * The live dashboard, served on the metrics address (or, without one, on dashboardAddress) and
   * fed every event.
   */
  readonly dashboard?: Dashboard;
  readonly dashboardAddress?: ListenAddress;
  /** Tries a TCP connection to an upstream proxy (readiness's upstream check); default sys/tcp-probe. */
  readonly probeUpstream?: (endpoint: Endpoint, timeoutMs: number) => Promise<{ readonly reachable: boolean; readonly error?: string }>;
  /** Milliseconds since some fixed point (the cache of the readiness reads); default performance.now. */
  readonly now?: () => number;
}

type Socket = Endpoint & { readonly transport: Transport };

export class Operations {
  private source: OperationsSource | undefined;
  private state: DaemonStatus['state'] = 'starting';
  private readonly sockets = new Map<string, Socket[]>();
  private readonly errors: Record<string, number> = {};
  private rulesReadFailures = 0;
  private rulesRead: Promise<RulesView> | undefined;
  private readonly startedAt = new Date();
  private metrics: MetricsEndpoint | undefined;
  private admin: AdminEndpoint | undefined;
  private readonly taken: { consumer: DescriptorConsumer; n: number }[] = [];
  /** Taken out of service on purpose (tproxy drain): not ready, serving on. */
  private drained = false;
  /** The last reads readiness judged from, reused for health.rulesCheckMs. */
  private readyRules: { at: number; view: Promise<RulesView> } | undefined;
  private readyUpstreams: { at: number; reach: Promise<UpstreamReachability[]> } | undefined;

  constructor(private readonly options: OperationsOptions) {}

  /** The proxies' event sink: every event is logged, errors are counted by code, sockets noted per listener. */
  readonly sink = (event: DaemonEvent): void => {
    this.options.dashboard?.sink(event);
    if (event.type === 'error') increment(this.errors, event.code);
    else if (event.type === 'listening') this.noteSocket(event.listener ?? DEFAULT_LISTENER, { ...event.local, transport: event.transport });
    this.options.log(event);
  };

  private noteSocket(listener: string, socket: Socket): void {
    const list = this.sockets.get(listener) ?? [];
    // Every TCP worker reports its own (SO_REUSEPORT) sockets, and a listener started again on a
    // reload reports them anew: keep one of each.
    if (!list.some((s) => s.transport === socket.transport && s.address === socket.address && s.port === socket.port)) list.push(socket);
    this.sockets.set(listener, list);
  }

  /**
   * Open the endpoints that were asked for. Before the proxies start, so a second daemon on the
   * same admin socket, or a taken metrics port, is refused before anything is touched.
   */
  async start(source: OperationsSource): Promise<void> {
    this.source = source;
    const { log } = this.options;
    try {
      if (this.options.adminSocket !== undefined) {
        this.take('admin', 1 + ADMIN_MAX_CONNECTIONS);
        this.admin = await serveAdminSocket(
          this.options.adminSocket,
          (line) => answer(line, (req) => this.answer(req)),
          { onStale: (path) => log({ type: 'admin.stale-socket', path, message: 'removed a socket file nobody answered on (a daemon that died left it)' }), onError: (error) => log({ type: 'error', code: 'ERR_SYSCALL', message: `admin socket: ${error.message}` }) },
          JSON.stringify({ id: 0, method: 'ping' }),
          (line) => {
            try {
              return `a running tproxy (pid ${resultOf<PingResult>(line ?? '').pid}) answers`;
            } catch {
              return 'a running program answers';
            }
          },
        );
        log({ type: 'admin.listening', path: this.admin.path, mode: '0600' });
      }
      const { dashboard } = this.options;
      const address = this.options.metricsAddress ?? (dashboard ? this.options.dashboardAddress : undefined);
      if (address !== undefined) {
        // prom-client is loaded only when metrics are asked for.
        const { PrometheusExposition } = await import('./prometheus.js');
        const exposition = new PrometheusExposition();
        const handler = dashboard ? dashboardHandler(dashboard, await loadAssets()) : undefined;
        this.take('metrics', 1 + METRICS_MAX_CONNECTIONS);
        this.metrics = await serveMetrics(
          address,
          {
            metrics: async () => ({ contentType: exposition.contentType, body: await exposition.render(metricValues(await this.metricsSnapshot())) }),
            ready: async () => {
              const readiness = await this.readiness();
              return { ready: readiness.ready, body: readinessText(readiness) };
            },
            ...(handler ? { other: handler } : {}),
          },
          (error) => log({ type: 'error', code: 'ERR_SYSCALL', message: `metrics endpoint: ${error.message}` }),
          METRICS_MAX_CONNECTIONS,
        );
        log({ type: 'metrics.listening', address: formatListenAddress(this.metrics.address), url: `http://${formatListenAddress(this.metrics.address)}/metrics` });
        if (dashboard) {
          dashboard.start();
          log({ type: 'dashboard.listening', url: `http://${formatListenAddress(this.metrics.address)}/`, actions: dashboard.readOnly ? 'none (read-only: no dashboard.token)' : 'with the token' });
        }
      }
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** Hold a server's descriptors (its listener and connections) in the budget for as long as it runs. */
  private take(consumer: DescriptorConsumer, n: number): void {
    const { budget } = this.options;
    if (!budget) return;
    if (!budget.acquire(consumer, n)) throw new TproxyError('ERR_RESOURCE_EXHAUSTED', `the ${consumer} server needs ${n} descriptors and the process has ${budget.available(consumer)} left: raise LimitNOFILE / ulimit -n`, { errno: 'EMFILE' });
    this.taken.push({ consumer, n });
  }

  private async answer(request: AdminRequest): Promise<unknown> {
    switch (request.method) {
      case 'ping':
        return { pid: process.pid, version: this.options.version } satisfies PingResult;
      case 'config':
        return this.config();
      case 'status':
        return this.status(request.top);
      case 'ready':
        return this.readiness();
      case 'drain':
        return this.drain(true);
      case 'undrain':
        return this.drain(false);
    }
  }

  /**
   * Take this gateway out of service (or back in): readiness says no, so the routing daemon
   * withdraws its route (or Kubernetes its endpoint). Listeners go on accepting: with ECMP the
   * routers need a moment to converge, and flows that still arrive meanwhile are served, not
   * refused; flows in progress are never touched. Lasts until undrain or the process ends.
   */
  drain(on: boolean): Promise<Readiness> {
    if (this.drained !== on) {
      this.drained = on;
      this.options.log({ type: on ? 'drained' : 'undrained', message: on ? 'not ready on purpose: new flows are still served until the routers move them' : 'in service again' });
    }
    return this.readiness();
  }

  /** Ready for new flows or not, and why: rules read back from the kernel (cached for health.rulesCheckMs), listeners, upstreams. */
  async readiness(): Promise<Readiness> {
    const source = this.requireSource();
    const { health } = source.config();
    const now = this.options.now ?? (() => performance.now());
    const at = now();
    if (!this.readyRules || at - this.readyRules.at >= health.rulesCheckMs) this.readyRules = { at, view: this.readRules() };
    let upstreams: Promise<UpstreamReachability[]> | undefined;
    if (health.checkUpstreams) {
      if (!this.readyUpstreams || at - this.readyUpstreams.at >= health.rulesCheckMs) {
        const probe = this.options.probeUpstream ?? probeTcp;
        this.readyUpstreams = { at, reach: Promise.all(upstreamProxiesOf(source.config()).map(async (u) => ({ ...u, ...(await probe(u.endpoint, health.upstreamTimeoutMs)) }))) };
      }
      upstreams = this.readyUpstreams.reach;
    }
    const [rules, reach] = await Promise.all([this.readyRules.view, upstreams]);
    return judgeReadiness({
      state: this.state,
      drained: this.drained,
      rules,
      listeners: source.listeners().map((l) => ({ name: l.name, health: l.proxy.health() })),
      mmproxyListeners: source.mmproxyStatus?.().listeners.length ?? 0,
      ...(reach ? { upstreams: reach } : {}),
    });
  }

  /** The configuration in force, as doctor and `rules status` need it; passwords masked. */
  config(): DaemonConfig {
    const config = this.requireSource().config();
    return {
      pid: process.pid,
      version: this.options.version,
      ...(this.options.configFile !== undefined ? { file: this.options.configFile } : {}),
      argv: (this.options.argv ?? []).map(maskSecrets),
      rulesApply: config.rules.apply,
      backend: config.rules.backend,
      upstream: config.listeners.some((l) => l.upstream === 'transparent') ? 'transparent' : 'direct',
      rules: rulesConfigOf(config),
      tcp: tcpLimitsOf(config),
    };
  }

  running(): void {
    this.state = 'running';
  }

  stopping(): void {
    this.state = 'stopping';
  }

  async close(): Promise<void> {
    this.options.dashboard?.stop();
    const [admin, metrics] = [this.admin, this.metrics];
    this.admin = undefined;
    this.metrics = undefined;
    await Promise.all([admin?.close(), metrics?.close()]);
    for (const { consumer, n } of this.taken.splice(0)) this.options.budget?.release(consumer, n);
  }

  /** Our kernel rules now; concurrent callers share one read. */
  private readRules(): Promise<RulesView> {
    const rules = this.requireSource().rules();
    if (!rules) return Promise.resolve({ managed: false });
    this.rulesRead ??= rules.controller
      .status(rules.plan)
      .then(
        (status): RulesView => ({ managed: true, ...status }),
        (error: unknown): RulesView => {
          this.rulesReadFailures++;
          return { managed: true, backend: rules.backend, error: (error as Error).message };
        },
      )
      .finally(() => (this.rulesRead = undefined));
    return this.rulesRead;
  }

  /** Every listener's counters and busiest flows, now. */
  private async listenersNow(top: number): Promise<{ listener: OperatedListener; counters: ProxyCounters; flows: readonly TcpFlowSnapshot[] }[]> {
    return Promise.all(this.requireSource().listeners().map(async (listener) => ({ listener, ...(await listener.proxy.snapshot(top)) })));
  }

  async metricsSnapshot(): Promise<MetricsSnapshot> {
    const [view, listeners] = await Promise.all([this.readRules(), this.listenersNow(0)]);
    const rules: RulesSnapshot = !view.managed
      ? view
      : 'error' in view
        ? view
        : {
            managed: true,
            backend: view.backend,
            inPlace: view.inPlace,
            counters: view.pieces.flatMap((p) => (p.counter ? [{ rule: p.name, packets: p.counter.packets, bytes: p.counter.bytes }] : [])),
          };
    return {
      build: { version: this.options.version, node: process.version, engine: this.options.engine },
      startTimeSeconds: Math.floor(this.startedAt.getTime() / 1000),
      listeners: listeners.map((l) => ({ name: l.listener.name, counters: l.counters, workers: l.listener.proxy.workers(), capacity: l.listener.proxy.tcpCapacity() })),
      rules,
      rulesReadFailures: this.rulesReadFailures,
      errors: { ...this.errors },
      ...(this.options.budget ? { descriptors: this.options.budget.snapshot() } : {}),
      ...(this.source?.mmproxy ? { mmproxy: this.source.mmproxy() } : {}),
    };
  }

  async status(top: number): Promise<DaemonStatus> {
    const [rules, listeners] = await Promise.all([this.readRules(), this.listenersNow(top)]);
    const mmproxyView = this.source?.mmproxyStatus?.();
    return {
      state: this.state,
      pid: process.pid,
      version: this.options.version,
      node: process.version,
      engine: this.options.engine,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      listeners: listeners.map(({ listener, counters }) => ({
        name: listener.name,
        sockets: this.sockets.get(listener.name) ?? [],
        counters,
        workers: { pids: listener.proxy.workerPids(), restarts: listener.proxy.workers().restarts },
        capacity: listener.proxy.tcpCapacity(),
      })),
      rules,
      flows: busiestFlows(
        listeners.map((l) => l.flows.map((f) => ({ ...f, listener: l.listener.name }))),
        top,
      ) as (TcpFlowSnapshot & { listener: string })[],
      ...(mmproxyView && (mmproxyView.listeners.length > 0 || mmproxyView.drainingConnections > 0) ? { mmproxy: mmproxyView } : {}),
    };
  }

  private requireSource(): OperationsSource {
    if (!this.source) throw new Error('operations: start() was not called');
    return this.source;
  }
}

/** Ask the daemon on `path` for the configuration in force. */
export async function fetchConfig(path: string, timeoutMs = 5_000): Promise<DaemonConfig> {
  return resultOf<DaemonConfig>(await request(path, JSON.stringify({ id: 1, method: 'config' }), timeoutMs));
}

/** Ask the daemon on `path` whether it is ready (for new flows), and why not. */
export async function fetchReadiness(path: string, timeoutMs = 10_000): Promise<Readiness> {
  return resultOf<Readiness>(await request(path, JSON.stringify({ id: 1, method: 'ready' }), timeoutMs));
}

/** Drain (on) or undrain the daemon on `path`; its readiness after. */
export async function requestDrain(path: string, on: boolean, timeoutMs = 10_000): Promise<Readiness> {
  return resultOf<Readiness>(await request(path, JSON.stringify({ id: 1, method: on ? 'drain' : 'undrain' }), timeoutMs));
}

/** Ask the daemon on `path` for its status. */
export async function fetchStatus(path: string, top: number, timeoutMs = 10_000): Promise<DaemonStatus> {
  return resultOf<DaemonStatus>(await request(path, JSON.stringify({ id: 1, method: 'status', params: { top } }), timeoutMs));
}

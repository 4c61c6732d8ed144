/**
 * What an operator sees of a running daemon: the metrics endpoint and the admin socket, both
 * opt-in, both answered from the proxy's counters and the kernel's rule counters read at that
 * moment (nothing is polled between requests). Also the event sink that counts reported errors.
 */
import type { Transport } from '../core/net/constants.js';
import type { Endpoint } from '../core/net/sockaddr.js';
import type { RulesPlan } from '../core/rules/ruleset.js';
import type { RulesController } from '../control/apply.js';
import type { ProxyEvent } from '../dataplane/events.js';
import type { Proxy } from '../dataplane/proxy.js';
import { increment } from '../dataplane/tcp/counters.js';
import { request, serveAdminSocket, type AdminEndpoint } from '../sys/admin-socket.js';
import { serveMetrics, type MetricsEndpoint } from '../sys/metrics-http.js';
import type { Logger } from '../cli/log.js';
import { answer, resultOf, type DaemonStatus, type PingResult, type RulesView } from './admin-protocol.js';
import { formatListenAddress, type ListenAddress } from './listen-address.js';
import { metricValues, type MetricsSnapshot, type RulesSnapshot } from './metric-families.js';
import { PrometheusExposition } from './prometheus.js';

export interface OperationsOptions {
  readonly metricsAddress?: ListenAddress;
  readonly adminSocket?: string;
  readonly log: Logger;
  readonly version: string;
  readonly engine: string;
}

export interface ManagedRules {
  readonly controller: RulesController;
  readonly plan: RulesPlan;
}

type Listener = Endpoint & { readonly transport: Transport };

export class Operations {
  private proxy: Proxy | undefined;
  private rules: ManagedRules | undefined;
  private state: DaemonStatus['state'] = 'starting';
  private listeners: readonly Listener[] = [];
  private readonly errors: Record<string, number> = {};
  private rulesReadFailures = 0;
  private rulesRead: Promise<RulesView> | undefined;
  private readonly startedAt = new Date();
  private metrics: MetricsEndpoint | undefined;
  private admin: AdminEndpoint | undefined;

  constructor(private readonly options: OperationsOptions) {}

  /** The proxy's event sink: every event is logged, reported errors are counted by code. */
  readonly sink = (event: ProxyEvent): void => {
    if (event.type === 'error') increment(this.errors, event.code);
    // Every TCP worker reports its own (SO_REUSEPORT) listeners: keep one of each.
    else if (event.type === 'listening' && !this.listeners.some((l) => l.transport === event.transport && l.address === event.local.address && l.port === event.local.port)) {
      this.listeners = [...this.listeners, { ...event.local, transport: event.transport }];
    }
    this.options.log(event);
  };

  /**
   * Open the endpoints that were asked for. Before the proxy starts, so a second daemon on the
   * same admin socket, or a taken metrics port, is refused before anything is touched.
   */
  async start(proxy: Proxy, rules: ManagedRules | undefined): Promise<void> {
    this.proxy = proxy;
    this.rules = rules;
    const { log } = this.options;
    try {
      if (this.options.adminSocket !== undefined) {
        this.admin = await serveAdminSocket(
          this.options.adminSocket,
          (line) => answer(line, async (req) => (req.method === 'ping' ? ({ pid: process.pid, version: this.options.version } satisfies PingResult) : this.status(req.top))),
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
      if (this.options.metricsAddress !== undefined) {
        const exposition = new PrometheusExposition();
        this.metrics = await serveMetrics(
          this.options.metricsAddress,
          async () => ({ contentType: exposition.contentType, body: await exposition.render(metricValues(await this.metricsSnapshot())) }),
          (error) => log({ type: 'error', code: 'ERR_SYSCALL', message: `metrics endpoint: ${error.message}` }),
        );
        log({ type: 'metrics.listening', address: formatListenAddress(this.metrics.address), url: `http://${formatListenAddress(this.metrics.address)}/metrics` });
      }
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  running(): void {
    this.state = 'running';
  }

  stopping(): void {
    this.state = 'stopping';
  }

  async close(): Promise<void> {
    const [admin, metrics] = [this.admin, this.metrics];
    this.admin = undefined;
    this.metrics = undefined;
    await Promise.all([admin?.close(), metrics?.close()]);
  }

  /** Our kernel rules now; concurrent callers share one read. */
  private readRules(): Promise<RulesView> {
    const rules = this.rules;
    if (!rules) return Promise.resolve({ managed: false });
    this.rulesRead ??= rules.controller
      .status(rules.plan)
      .then(
        (status): RulesView => ({ managed: true, ...status }),
        (error: unknown): RulesView => {
          this.rulesReadFailures++;
          return { managed: true, backend: rules.controller.backend.name, error: (error as Error).message };
        },
      )
      .finally(() => (this.rulesRead = undefined));
    return this.rulesRead;
  }

  async metricsSnapshot(): Promise<MetricsSnapshot> {
    const proxy = this.requireProxy();
    const [view, now] = await Promise.all([this.readRules(), proxy.snapshot(0)]);
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
      counters: now.counters,
      workers: proxy.workers(),
      rules,
      rulesReadFailures: this.rulesReadFailures,
      errors: { ...this.errors },
    };
  }

  async status(top: number): Promise<DaemonStatus> {
    const proxy = this.requireProxy();
    const [rules, now] = await Promise.all([this.readRules(), proxy.snapshot(top)]);
    return {
      state: this.state,
      pid: process.pid,
      version: this.options.version,
      node: process.version,
      engine: this.options.engine,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      listeners: this.listeners,
      rules,
      counters: now.counters,
      workers: { pids: proxy.workerPids(), restarts: proxy.workers().restarts },
      flows: now.flows,
    };
  }

  private requireProxy(): Proxy {
    if (!this.proxy) throw new Error('operations: start() was not called');
    return this.proxy;
  }
}

/** Ask the daemon on `path` for its status. */
export async function fetchStatus(path: string, top: number, timeoutMs = 10_000): Promise<DaemonStatus> {
  return resultOf<DaemonStatus>(await request(path, JSON.stringify({ id: 1, method: 'status', params: { top } }), timeoutMs));
}

/**
 * The daemon behind `tproxy run`: one Proxy per configured listener, and the kernel rules that send
 * each listener's intercepted ports to its own port (one table, applied atomically).
 *
 * A reload (SIGHUP) changes what differs and nothing else: listeners whose settings are unchanged
 * keep running (their flows never notice); added listeners start before the rules point at them;
 * then the new rules replace the old in one transaction; then removed listeners stop accepting and
 * their flows drain (up to reload.drainMs). Draining listeners keep the rules their established flows
 * need (divert, policy routing of their families, their upstream mark) until their drain ends; then
 * the rules are planned again without them. A changed listener is stopped and started again on the
 * same port (its TCP flows drain; its UDP sessions end). Two kinds of change are made on the
 * running listener instead:
 *   - routes and outbounds (routes, lists, outbounds, the listener's own outbound, the sniff
 *     timeout): swapped in place first of all, so a swap the data plane refuses fails the reload
 *     before anything else changed; new flows take the new routes, flows and UDP sessions in
 *     progress keep the route and outbound they started with, and their counters go on;
 *   - per-flow events (on with log.level debug): switched once the rest of the reload succeeded,
 *     so turning on debug logging does not disturb the traffic one wants to look at.
 * When anything fails the old configuration stays in force: listeners started for the new one are
 * stopped, replaced ones restarted, swapped routes swapped back.
 */
import { rulesConfigOf } from '../core/config/rules-of.js';
import type { TproxyConfig } from '../core/config/tproxy-config.js';
import { errnoOf, isTproxyError } from '../core/errors.js';
import { planRules } from '../core/rules/plan.js';
import type { ListenerRules } from '../core/rules/config.js';
import type { MmproxySettings } from '../core/config/sections/mmproxy.js';
import type { RulesPlan } from '../core/rules/planned.js';
import type { ApplyOptions, ApplyResult, RemoveResult, RulesStatus } from '../control/apply.js';
import type { BackendChoice, BackendName } from '../control/backend.js';
import type { EventSink } from '../dataplane/events.js';
import { routingSettingsOf, type ProxyConfig, type ProxyCounters, type ProxyHealth, type RoutingSettings } from '../dataplane/proxy.js';
import type { TcpFlowSnapshot } from '../dataplane/tcp/flows.js';
import type { UdpSessionSnapshot } from '../dataplane/udp/protocol.js';
import type { StopReport } from '../dataplane/tcp/relay.js';
import type { DaemonEvent } from './events.js';
import type { TcpCapacity } from '../dataplane/tcp/capacity.js';
import { proxyConfigOf } from './proxy-config.js';
import { listenerChanges, type ListenerChanges } from './reconcile.js';

export type { DaemonEvent };

/** What the daemon needs of a proxy (the real one is dataplane/proxy.ts). */
export interface ListenerProxy {
  start(): Promise<unknown>;
  stop(graceMs?: number): Promise<StopReport>;
  counters(): ProxyCounters;
  /** Counters now and the busiest TCP flows (for status and metrics). */
  snapshot(limit: number): Promise<{ readonly counters: ProxyCounters; readonly flows: readonly TcpFlowSnapshot[] }>;
  workers(): { readonly running: number; readonly restarts: number };
  workerPids(): number[];
  /** TCP accepting, UDP loop running: what readiness judges. */
  health(): ProxyHealth;
  /** The TCP connection cap in force per worker, and whether the descriptor limit lowered it. */
  tcpCapacity(): TcpCapacity;
  /** Per-flow events on or off, listeners and flows untouched; resolves once in force. */
  setFlowEvents(on: boolean): Promise<void>;
  /** Routes and outbounds of new flows; flows and UDP sessions in progress keep theirs. Resolves once in force. */
  setRouting(settings: RoutingSettings): Promise<void>;
  /** Reset TCP flow `id` (of worker `pid`) toward both peers; false when it is not in progress. */
  closeTcpFlow(id: number, pid?: number): Promise<boolean>;
  /** The `limit` busiest UDP sessions in progress with their bytes now. */
  udpSessions(limit: number): Promise<readonly UdpSessionSnapshot[]>;
  /** End UDP session `id`; false when it is not in progress. */
  closeUdpSession(id: number): Promise<boolean>;
}

export interface RulesApplier {
  apply(plan: RulesPlan, options?: ApplyOptions): Promise<ApplyResult>;
  remove(plan: RulesPlan): Promise<RemoveResult>;
  /** The plan's pieces as the kernel has them now, with their counters (for status and metrics). */
  status(plan: RulesPlan): Promise<RulesStatus>;
}


export interface DaemonDeps {
  readonly emit: (event: DaemonEvent) => void;
  readonly createProxy: (config: ProxyConfig, emit: EventSink) => ListenerProxy;
  /** The rules controller for a backend choice (`auto` resolved on this host). */
  readonly rules: (choice: BackendChoice) => { readonly backend: BackendName; readonly controller: RulesApplier };
  /** CPU cores, for tcp.workers: auto. */
  readonly cores: number;
  /** Recorded with the rules as their owner. */
  readonly pid: number;
  /** Waits between attempts to bind a port a stopping listener still holds. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface RunningListener {
  readonly name: string;
  readonly config: ProxyConfig;
  readonly proxy: ListenerProxy;
}

export interface AppliedRules {
  readonly plan: RulesPlan;
  readonly backend: BackendName;
  readonly controller: RulesApplier;
}

export interface ReloadReport extends ListenerChanges {
  readonly rulesChanged: boolean;
}

/** A listener that stopped accepting: its flows finishing, and the rules they need until then. */
interface DrainingListener {
  readonly done: Promise<StopReport>;
  readonly rules: ListenerRules | undefined;
}

/** Plans that differ only in their draining listeners where that changes no rule need no apply. */
function sameRules(a: RulesPlan, b: RulesPlan): boolean {
  const withoutDraining = (p: RulesPlan): string => JSON.stringify({ ...p, config: { ...p.config, draining: undefined } });
  return withoutDraining(a) === withoutDraining(b);
}

function wantedListeners(config: TproxyConfig, cores: number): Map<string, ProxyConfig> {
  return new Map(config.listeners.map((l) => [l.name, proxyConfigOf(config, l, cores)]));
}

export class Daemon {
  private current: TproxyConfig;
  private readonly running = new Map<string, RunningListener>();
  /** Listeners that stopped accepting and whose flows are finishing. */
  private readonly draining = new Map<ListenerProxy, DrainingListener>();
  /** mmproxy entries a reload removed or replaced whose flows are finishing: their reply routing stays. */
  private readonly mmproxyDraining = new Set<MmproxySettings>();
  private rules: AppliedRules | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private stopping: Promise<StopReport & { readonly counters: Record<string, ProxyCounters> }> | undefined;
  /** The grace in force for the stop: a second stop() shortens it. */
  private graceMs = Infinity;

  constructor(
    config: TproxyConfig,
    private readonly deps: DaemonDeps,
  ) {
    this.current = config;
  }

  get config(): TproxyConfig {
    return this.current;
  }

  /** The listeners running now, in configuration order. */
  listeners(): RunningListener[] {
    return this.current.listeners.map((l) => this.running.get(l.name)).filter((r): r is RunningListener => r !== undefined);
  }

  /** Start every listener, then apply the rules (a tproxy rule without a socket behind it drops or leaks). */
  async start(): Promise<void> {
    const wanted = wantedListeners(this.current, this.deps.cores);
    try {
      for (const [name, config] of wanted) this.running.set(name, { name, config, proxy: await this.startProxy(name, config) });
      this.rules = await this.applyRules(this.current, undefined);
    } catch (error) {
      await Promise.all([...this.running.values()].map((r) => r.proxy.stop(0)));
      this.running.clear();
      throw error;
    }
  }

  /**
   * Move to `next` (already validated). Rejects, with the old configuration still in force, on
   * failure. `mmproxyLeaving`: the mmproxy entries the reload removes or replaces; the rules keep
   * their reply routing until mmproxyDrained is called for each.
   */
  reload(next: TproxyConfig, mmproxyLeaving: readonly MmproxySettings[] = []): Promise<ReloadReport> {
    const run = this.queue.then(() => this.reloadNow(next, mmproxyLeaving));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(next: TproxyConfig, mmproxyLeaving: readonly MmproxySettings[]): Promise<ReloadReport> {
    if (this.stopped) throw new Error('the daemon is stopping');
    for (const settings of mmproxyLeaving) this.mmproxyDraining.add(settings);
    const wanted = wantedListeners(next, this.deps.cores);
    const changes = listenerChanges(new Map([...this.running].map(([name, r]) => [name, r.config])), wanted);
    const started: RunningListener[] = [];
    const replaced: RunningListener[] = [];
    const rerouted: RunningListener[] = [];
    try {
      // Routes swapped on running listeners first: one the data plane refuses fails the reload
      // before anything else changed. Flows and UDP sessions in progress keep their outbound.
      for (const name of changes.routingSwitched ?? []) {
        const kept = this.running.get(name) as RunningListener;
        rerouted.push(kept);
        await kept.proxy.setRouting(routingSettingsOf(wanted.get(name) as ProxyConfig));
      }
      // A changed listener gives its port up first: stop accepting (flows drain), then bind anew.
      for (const name of changes.changed) {
        const old = this.running.get(name) as RunningListener;
        replaced.push(old);
        this.drain(old, next.reload.drainMs);
      }
      for (const name of [...changes.changed, ...changes.added]) {
        const config = wanted.get(name) as ProxyConfig;
        started.push({ name, config, proxy: await this.startProxy(name, config) });
      }
      // Removed listeners drain once these rules are in force: their flows keep their rules meanwhile.
      const removedRules = changes.removed.map((name) => this.listenerRules(name)).filter((r): r is ListenerRules => r !== undefined);
      const rules = await this.applyRules(next, this.rules, [...this.drainingRules(), ...removedRules]);
      const rulesChanged = rules !== this.rules;
      this.rules = rules;
      for (const r of started) this.running.set(r.name, r);
      await Promise.all(
        (changes.flowEventsSwitched ?? []).map(async (name) => {
          const kept = this.running.get(name) as RunningListener;
          const config = wanted.get(name) as ProxyConfig;
          await kept.proxy.setFlowEvents(config.flowEvents);
          this.running.set(name, { ...kept, config });
        }),
      );
      for (const name of changes.routingSwitched ?? []) this.running.set(name, { ...(this.running.get(name) as RunningListener), config: wanted.get(name) as ProxyConfig });
      for (const name of changes.removed) {
        const old = this.running.get(name) as RunningListener;
        this.running.delete(name);
        this.drain(old, next.reload.drainMs);
      }
      this.current = next;
      this.deps.emit({ type: 'reload.applied', ...changes, rulesChanged });
      return { ...changes, rulesChanged };
    } catch (error) {
      for (const settings of mmproxyLeaving) this.mmproxyDraining.delete(settings);
      await Promise.all(started.map((r) => r.proxy.stop(0)));
      // Routes swapped back: new flows leave as before the reload again.
      for (const old of rerouted) {
        await old.proxy.setRouting(routingSettingsOf(old.config)).catch((restoreError: unknown) => {
          this.deps.emit({ type: 'error', code: isTproxyError(restoreError) ? restoreError.code : errnoOf(restoreError), message: `listener ${old.name}: its routes could not be restored after a failed reload: ${(restoreError as Error).message}` });
        });
      }
      // The replaced listeners stopped accepting: start them again as they were.
      for (const old of replaced) {
        try {
          this.running.set(old.name, { ...old, proxy: await this.startProxy(old.name, old.config) });
        } catch (restartError) {
          this.running.delete(old.name);
          this.deps.emit({ type: 'error', code: isTproxyError(restartError) ? restartError.code : errnoOf(restartError), message: `listener ${old.name} could not be restarted after a failed reload: ${(restartError as Error).message}` });
        }
      }
      throw error;
    }
  }

  /**
   * Stop accepting now; flows finish within graceMs (listeners draining after a reload too), then
   * the rules go. Called again while stopping (a second stop signal) with a shorter grace, it cuts
   * the wait short and returns the same stop: the rules are still removed, once.
   */
  stop(graceMs: number): Promise<StopReport & { readonly counters: Record<string, ProxyCounters> }> {
    this.graceMs = Math.min(this.graceMs, graceMs);
    if (this.stopping) {
      for (const proxy of [...[...this.running.values()].map((r) => r.proxy), ...this.draining.keys()]) void proxy.stop(this.graceMs).catch(() => undefined);
      return this.stopping;
    }
    this.stopping = this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<StopReport & { readonly counters: Record<string, ProxyCounters> }> {
    this.stopped = true;
    await this.queue;
    const stopping = [...this.running.values()].map((r) => r.proxy.stop(this.graceMs));
    // Listeners already draining: the shorter grace wins.
    for (const proxy of this.draining.keys()) void proxy.stop(this.graceMs).catch(() => undefined);
    let reports: StopReport[];
    let counters: Record<string, ProxyCounters>;
    try {
      reports = await Promise.all([...stopping, ...[...this.draining.values()].map((d) => d.done)]);
      counters = this.counters();
    } finally {
      // Whatever happened to the listeners, the rules go: left alone they would black-hole the traffic.
      this.running.clear();
      if (this.rules) {
        const removed = await this.rules.controller.remove(this.rules.plan);
        this.deps.emit({ type: 'rules.removed', ...removed });
        this.rules = undefined;
      }
    }
    const total = reports.reduce((a, r) => ({ completed: a.completed + r.completed, forced: a.forced + r.forced }), { completed: 0, forced: 0 });
    return { ...total, counters };
  }

  /** The kernel rules in force now (changes on a reload); undefined when rules.apply is off. */
  appliedRules(): AppliedRules | undefined {
    return this.rules;
  }

  /** Counters of every running listener, by name. */
  counters(): Record<string, ProxyCounters> {
    return Object.fromEntries(this.listeners().map((r) => [r.name, r.proxy.counters()]));
  }

  private drain(listener: RunningListener, drainMs: number): void {
    this.deps.emit({ type: 'listener.draining', listener: listener.name, drainMs });
    const rules = this.listenerRules(listener.name);
    const done = listener.proxy.stop(drainMs).then((report) => {
      this.draining.delete(listener.proxy);
      this.deps.emit({ type: 'listener.stopped', listener: listener.name, flowsCompleted: report.completed, flowsReset: report.forced });
      this.releaseRules(`listener ${listener.name}`);
      return report;
    });
    this.draining.set(listener.proxy, { done, rules });
  }

  /** The rules of a listener of the configuration in force (before a reload: the old one). */
  private listenerRules(name: string): ListenerRules | undefined {
    return rulesConfigOf(this.current).listeners.find((l) => l.name === name);
  }

  private drainingRules(): ListenerRules[] {
    return [...this.draining.values()].map((d) => d.rules).filter((r): r is ListenerRules => r !== undefined);
  }

  /** The last flow of an mmproxy entry a reload removed or replaced ended: its reply routing may go. */
  mmproxyDrained(settings: MmproxySettings): void {
    if (this.mmproxyDraining.delete(settings)) this.releaseRules(`mmproxy listener ${settings.name}`);
  }

  /** After a drain: plan without the drained listener, in turn with reloads (stop removes all rules anyway). */
  private releaseRules(who: string): void {
    this.queue = this.queue.then(async () => {
      if (this.stopped || !this.rules) return;
      try {
        this.rules = await this.applyRules(this.current, this.rules, this.drainingRules());
      } catch (error) {
        this.deps.emit({ type: 'error', code: isTproxyError(error) ? error.code : errnoOf(error), message: `the rules kept for ${who} while it drained could not be removed: ${(error as Error).message}` });
      }
    });
  }

  /** Start one listener; a port its stopping predecessor still holds is retried for a while. */
  private async startProxy(name: string, config: ProxyConfig): Promise<ListenerProxy> {
    const emit: EventSink = (event) => this.deps.emit({ ...event, listener: name });
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let attempt = 1; ; attempt++) {
      const proxy = this.deps.createProxy(config, emit);
      try {
        await proxy.start();
        return proxy;
      } catch (error) {
        if (!isTproxyError(error, 'ERR_ADDRESS_IN_USE') || attempt >= 20 || this.draining.size === 0) throw error;
        await sleep(100);
      }
    }
  }

  /** Apply the rules `config` asks for, keeping what `draining` listeners' flows need; the same rules as `before` are left alone. */
  private async applyRules(config: TproxyConfig, before: AppliedRules | undefined, draining: readonly ListenerRules[] = []): Promise<AppliedRules | undefined> {
    if (!config.rules.apply) {
      if (before) {
        const removed = await before.controller.remove(before.plan);
        this.deps.emit({ type: 'rules.removed', ...removed });
      }
      return undefined;
    }
    const plan = planRules(rulesConfigOf(config, draining, [...this.mmproxyDraining]));
    const { backend, controller } = before && before.plan.table.name === plan.table.name && config.rules.backend === this.current.rules.backend ? before : this.deps.rules(config.rules.backend);
    if (before && sameRules(before.plan, plan) && before.backend === backend) return before;
    // Another table or backend: the old rules go first (ours, so they would collide with the new).
    if (before && (before.backend !== backend || before.plan.table.name !== plan.table.name)) {
      const removed = await before.controller.remove(before.plan);
      this.deps.emit({ type: 'rules.removed', ...removed });
    }
    // Recorded as ours: after a crash the next start (or rules cleanup) finds and replaces it.
    const applied = await controller.apply(plan, { owner: this.deps.pid });
    for (const warning of applied.warnings) this.deps.emit({ type: 'rules.warning', message: warning });
    this.deps.emit({ type: 'rules.applied', backend, table: `${plan.table.family} ${plan.table.name}`, listeners: plan.config.listeners.length, ...(plan.config.draining ? { draining: plan.config.draining.map((l) => l.name) } : {}), policyRoutes: plan.policyRoutes.length, failMode: plan.config.failMode, ...(applied.replaced ? { replaced: applied.replaced } : {}) });
    return { plan, backend, controller };
  }
}

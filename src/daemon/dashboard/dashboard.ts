/**
 * The live dashboard's state in the daemon: the flow table (fed by the per-flow events), the
 * throughput history (one sample a second from the listeners' counters) and the pages connected
 * to the event stream, to which it pushes changes only: flows added, updated (route, name, bytes),
 * removed; one history sample a second; the listeners' and rules' status when it changed.
 *
 * Work done for the pages happens only while one is connected: the TCP engines and the UDP relay
 * loops are asked for the bytes of their flows in progress once a second; the listeners' counters (read without asking
 * anyone) go with each second's sample; the status with the kernel rules' counters is read every
 * statusEveryMs (30 s: reading the rules runs nft and ip, which cost the daemon about 8% of its
 * CPU under connection churn when done every 5 s) and at once after the rules or listeners
 * changed. Without a page, the cost is the flow events and one read of the counters a second.
 * The readiness (drained, and every reason the gateway should not get new flows) goes with the
 * status, and to the pages at once after a drain or undrain from the page.
 */
import { timingSafeEqual } from 'node:crypto';
import type { ExplainAnswer, ExplainRequest } from '../../core/model/explain-request.js';
import type { ProxyCounters } from '../../dataplane/proxy.js';
import { MAX_FLOWS_LIMIT, type TcpFlowSnapshot } from '../../dataplane/tcp/flows.js';
import type { UdpSessionSnapshot } from '../../dataplane/udp/protocol.js';
import type { MmproxyUdpSessionSnapshot } from '../../dataplane/mmproxy/udp-relay.js';
import type { DaemonStatus } from '../admin-protocol.js';
import type { DaemonEvent } from '../events.js';
import type { Readiness } from '../readiness.js';
import { coalesce, FlowTable, parseFlowKey, type DashboardFlow, type FlowChange } from './flow-table.js';
import { History, type HistorySample } from './history.js';

/** What the dashboard needs of one running listener's proxy (dataplane/proxy.ts has it). */
export interface DashboardProxy {
  counters(): ProxyCounters;
  snapshot(limit: number): Promise<{ readonly flows: readonly TcpFlowSnapshot[] }>;
  closeTcpFlow(id: number, pid?: number): Promise<boolean>;
  /** The busiest UDP sessions in progress with their bytes now (none without UDP). */
  udpSessions(limit: number): Promise<readonly UdpSessionSnapshot[]>;
  closeUdpSession(id: number): Promise<boolean>;
}

export interface DashboardSource {
  listeners(): readonly { readonly name: string; readonly proxy: DashboardProxy }[];
  /** Listeners, their sockets and counters, and the rules with their counters, now (Operations.status). */
  status(): Promise<DaemonStatus>;
  explain(request: ExplainRequest): Promise<ExplainAnswer>;
  /** Re-read the configuration file and apply it, as SIGHUP does; rejects with the reason it was refused. */
  reload(): Promise<void>;
  /** Whether this gateway should get new flows, with every reason (Operations.readiness, /readyz). */
  readiness(): Promise<Readiness>;
  /** Take the gateway out of service (true) or back in (false), as `tproxy drain`/`undrain`; its readiness after. */
  drain(on: boolean): Promise<Readiness>;
  /** The busiest sessions in progress of each mmproxy `protocol: udp` entry (absent: no mmproxy entries). */
  mmproxyUdpSessions?(limit: number): readonly { readonly name: string; readonly sessions: readonly MmproxyUdpSessionSnapshot[] }[];
  /** End session `id` of mmproxy entry `name`; false when it is not in progress. */
  closeMmproxyUdpSession?(name: string, id: number): boolean;
}

export interface DashboardOptions {
  /** Actions are allowed to requests carrying it; absent: read-only. */
  readonly token?: string;
  /** Flows kept in the table (more are counted as untracked). */
  readonly maxFlows?: number;
  /** Samples of the history (one a second). */
  readonly historySeconds?: number;
  readonly statusEveryMs?: number;
  /** How often batched flow changes go out to the pages (armed only while a page is connected). */
  readonly pushEveryMs?: number;
  readonly now?: () => number;
  /** Tests: the interval timers (default the global ones), to count what is armed. */
  readonly timers?: DashboardTimers;
}

export interface DashboardTimers {
  setInterval(f: () => void, ms: number): { unref(): unknown };
  clearInterval(timer: unknown): void;
}

const GLOBAL_TIMERS: DashboardTimers = {
  setInterval: (f, ms) => setInterval(f, ms),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout),
};

/** A page connected to the event stream: gets one SSE message at a time. */
export interface DashboardClient {
  send(event: string, data: unknown): void;
}

export interface DashboardState {
  readonly readOnly: boolean;
  readonly maxFlows: number;
  readonly untracked: number;
  readonly flows: readonly DashboardFlow[];
  readonly history: readonly HistorySample[];
  readonly status: DaemonStatus;
  readonly readiness: Readiness;
}

export type ActionResult = { readonly ok: true; readonly [field: string]: unknown } | { readonly ok: false; readonly status: number; readonly error: string };

export const DEFAULT_MAX_FLOWS = 20_000;

/** Events after which the status (listeners, rules) is read again at the next second. */
const STATUS_CHANGES = new Set(['ready', 'rules.applied', 'rules.removed', 'reload.applied', 'listener.draining', 'listener.stopped', 'worker.exit', 'drained', 'undrained']);

/** A listener's live figures, sent with every sample (from the counters, no request to anyone). */
export interface ListenerFigures {
  readonly name: string;
  readonly tcpActive: number;
  readonly tcpAccepted: number;
  readonly udpActive?: number;
}

export class Dashboard {
  readonly table: FlowTable;
  readonly history: History;
  private readonly clients = new Set<DashboardClient>();
  private pending: FlowChange[] = [];
  private readonly timers: DashboardTimers;
  /** The 1 s tick while started (history samples are taken with or without pages). */
  private ticker: unknown;
  /** The push of flow changes: only while a page is connected (nothing to push to otherwise). */
  private pusher: unknown;
  private started = false;
  private lastStatus = '';
  private lastReadiness = '';
  private statusAt = 0;
  private busy = false;
  private readonly now: () => number;

  constructor(
    private readonly source: DashboardSource,
    private readonly options: DashboardOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? GLOBAL_TIMERS;
    this.table = new FlowTable(options.maxFlows ?? DEFAULT_MAX_FLOWS, this.now);
    this.history = new History(options.historySeconds ?? 600);
  }

  get readOnly(): boolean {
    return this.options.token === undefined;
  }

  /** Every event of the daemon goes through here (before the log). */
  readonly sink = (event: DaemonEvent): void => {
    let changes: FlowChange[] = [];
    if (event.type === 'worker.exit' && typeof event.pid === 'number') changes = this.table.dropWorker(typeof event.listener === 'string' ? event.listener : 'main', event.pid);
    else if (event.type === 'listener.stopped' && typeof event.listener === 'string') changes = this.table.dropListener(event.listener);
    if (STATUS_CHANGES.has(event.type)) this.statusAt = 0;
    else {
      const change = this.table.apply(event);
      if (change) changes = [change];
    }
    if (this.clients.size > 0) for (const c of changes) this.pending.push(c);
  };

  start(): void {
    if (this.started) return;
    this.started = true;
    this.tick();
    this.ticker = this.every(1000, () => this.tick());
    if (this.clients.size > 0) this.armPush();
  }

  stop(): void {
    this.started = false;
    if (this.ticker !== undefined) this.timers.clearInterval(this.ticker);
    this.ticker = undefined;
    this.disarmPush();
    this.clients.clear();
  }

  private every(ms: number, f: () => void): unknown {
    const t = this.timers.setInterval(f, ms);
    t.unref();
    return t;
  }

  /** The first page connected: flow changes go out every pushEveryMs from now on. */
  private armPush(): void {
    if (this.pusher === undefined && this.started) this.pusher = this.every(this.options.pushEveryMs ?? 250, () => this.flush());
  }

  /** The last page left: nothing to push to, so nothing wakes the daemon for it. */
  private disarmPush(): void {
    if (this.pusher !== undefined) this.timers.clearInterval(this.pusher);
    this.pusher = undefined;
  }

  async state(): Promise<DashboardState> {
    const [status, readiness] = await Promise.all([this.source.status(), this.source.readiness()]);
    return { readOnly: this.readOnly, maxFlows: this.table.maxFlows, untracked: this.table.untracked, flows: this.table.list(), history: this.history.samples(), status, readiness };
  }

  /** A page connects: it gets the whole state once, then the changes. Returns its goodbye. */
  async connect(client: DashboardClient): Promise<() => void> {
    // Added first: changes during the status read are queued, and the page applies them after the state.
    this.clients.add(client);
    this.armPush();
    const goodbye = (): void => {
      this.clients.delete(client);
      if (this.clients.size > 0) return;
      this.disarmPush();
      // Queued for the pages that left: nobody will get them.
      this.pending = [];
    };
    let state: DashboardState;
    try {
      state = await this.state();
    } catch (error) {
      goodbye();
      throw error;
    }
    this.lastStatus = JSON.stringify(statusOnly(state.status));
    this.lastReadiness = JSON.stringify(state.readiness);
    this.statusAt = this.now();
    client.send('state', state);
    return goodbye;
  }

  get connected(): number {
    return this.clients.size;
  }

  explain(request: ExplainRequest): Promise<ExplainAnswer> {
    return this.source.explain(request);
  }

  readiness(): Promise<Readiness> {
    return this.source.readiness();
  }

  /** The token of a request matches the configured one (constant time); false when none is configured. */
  authorized(token: string | undefined): boolean {
    const expected = this.options.token;
    if (expected === undefined || token === undefined) return false;
    const a = Buffer.from(token);
    const b = Buffer.from(expected);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** End one flow in progress: a TCP flow is reset toward both peers, a UDP session's sockets close (an mmproxy one's too). */
  async closeFlow(key: string): Promise<ActionResult> {
    const where = parseFlowKey(key);
    const flow = this.table.get(key);
    if (!where || !flow) return { ok: false, status: 404, error: `no flow ${JSON.stringify(key)} in progress (it may have ended)` };
    if (where.mmproxy) {
      const closed = this.source.closeMmproxyUdpSession?.(where.listener, where.id) ?? false;
      return closed ? { ok: true, key } : { ok: false, status: 404, error: `flow ${key} had already ended` };
    }
    const listener = this.source.listeners().find((l) => l.name === where.listener);
    if (!listener) return { ok: false, status: 404, error: `listener ${where.listener} is no longer running` };
    const closed = where.transport === 'tcp' ? await listener.proxy.closeTcpFlow(where.id, where.pid) : await listener.proxy.closeUdpSession(where.id);
    return closed ? { ok: true, key } : { ok: false, status: 404, error: `flow ${key} had already ended` };
  }

  async reload(): Promise<ActionResult> {
    try {
      await this.source.reload();
      return { ok: true };
    } catch (error) {
      return { ok: false, status: 409, error: `reload refused, the configuration in force stays: ${(error as Error).message}` };
    }
  }

  /**
   * Drain (on) or undrain the gateway, as `tproxy drain` does: readiness says no, flows in progress
   * and new ones are still served. The pages get the readiness at once (a `readiness` event).
   */
  async drain(on: boolean): Promise<ActionResult> {
    let readiness: Readiness;
    try {
      readiness = await this.source.drain(on);
    } catch (error) {
      return { ok: false, status: 500, error: `${on ? 'drain' : 'undrain'} failed: ${(error as Error).message}` };
    }
    this.noteReadiness(readiness);
    return { ok: true, readiness };
  }

  /** Sends the readiness to the pages when it differs from what they last got. */
  private noteReadiness(readiness: Readiness): void {
    const text = JSON.stringify(readiness);
    if (text === this.lastReadiness) return;
    this.lastReadiness = text;
    this.broadcast('readiness', readiness);
  }

  private broadcast(event: string, data: unknown): void {
    for (const c of this.clients) c.send(event, data);
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const changes = coalesce(this.pending);
    this.pending = [];
    if (changes.length > 0) this.broadcast('flows', changes);
  }

  /** Once a second: a history sample; with pages connected, the bytes of flows in progress (the 1,000 busiest TCP flows and UDP sessions of each listener) and (less often) the status. */
  private tick(): void {
    const listeners = this.source.listeners();
    let bytesFromClient = 0;
    let bytesFromServer = 0;
    const figures: ListenerFigures[] = [];
    for (const l of listeners) {
      const c = l.proxy.counters();
      bytesFromClient += c.tcp.bytesFromClient + (c.udp?.bytesFromClients ?? 0);
      bytesFromServer += c.tcp.bytesFromServer + (c.udp?.bytesFromServers ?? 0);
      figures.push({ name: l.name, tcpActive: c.tcp.active, tcpAccepted: c.tcp.accepted, ...(c.udp ? { udpActive: c.udp.sessionsActive } : {}) });
    }
    const sample = this.history.record(this.now(), { bytesFromClient, bytesFromServer, flowsOpened: this.table.opened });
    if (this.clients.size === 0) return;
    if (sample) this.broadcast('sample', { ...sample, untracked: this.table.untracked, listeners: figures });
    if (this.busy) return;
    this.busy = true;
    void this.refresh(listeners).finally(() => (this.busy = false));
  }

  private async refresh(listeners: readonly { readonly name: string; readonly proxy: DashboardProxy }[]): Promise<void> {
    try {
      const snapshots = await Promise.all(listeners.map(async (l) => ({ name: l.name, flows: (await l.proxy.snapshot(MAX_FLOWS_LIMIT)).flows, sessions: await l.proxy.udpSessions(MAX_FLOWS_LIMIT) })));
      for (const s of snapshots) this.pending.push(...this.table.updateBytes(s.name, s.flows), ...this.table.updateUdpBytes(s.name, s.sessions));
      for (const m of this.source.mmproxyUdpSessions?.(MAX_FLOWS_LIMIT) ?? []) this.pending.push(...this.table.updateMmproxyUdpBytes(m.name, m.sessions));
      if (this.now() - this.statusAt >= (this.options.statusEveryMs ?? 30_000)) {
        this.statusAt = this.now();
        const status = await this.source.status();
        const text = JSON.stringify(statusOnly(status));
        if (text !== this.lastStatus) {
          this.lastStatus = text;
          this.broadcast('status', status);
        }
        this.noteReadiness(await this.source.readiness());
      }
    } catch {
      // A listener stopping mid-read: the next second asks again.
    }
  }
}

/** The status without what changes every second by itself (uptime). */
function statusOnly(status: DaemonStatus): Omit<DaemonStatus, 'uptimeSeconds'> {
  const { uptimeSeconds: _, ...rest } = status;
  return rest;
}

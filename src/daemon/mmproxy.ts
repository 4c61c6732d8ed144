/**
 * The daemon's mmproxy listeners (config section `mmproxy:`), beside the transparent ones: started
 * with the daemon, stopped with it, and changed by a reload atomically:
 * - an entry whose settings are unchanged keeps running, its flows never notice;
 * - a new or changed entry is built (its settings checked), and listens on its new addresses,
 *   before anything else changes: a refusal there (a taken port, a bad prefix) closes what the
 *   reload opened and leaves every listener as it was;
 * - then, at once, the listening sockets of addresses that stay are handed from the old entry to
 *   the new one (no moment without a listener, no second bind of a port), the old entry stops
 *   accepting and its flows in progress go on to their end (it drains); its counters go on in the
 *   new entry of the same name;
 * - a removed entry stops accepting and drains likewise.
 * The reply routing they need (loopback rule, divert, fwmark route) is planned with the daemon's
 * rules (rulesConfigOf); a leaving entry's stays until its drain ends (Daemon.reload, mmproxyDrained).
 *
 * A `protocol: udp` entry (MmproxyUdpRelay) is simpler: nothing is handed over. A new or changed
 * one binds its addresses beside the old entry's (SO_REUSEADDR), and at commit the old one stops:
 * its sessions end, and the next datagram of each flow opens a new one on the new entry (a UDP
 * session holds nothing a client would miss but the socket itself).
 */
import { isDeepStrictEqual } from 'node:util';
import type { MmproxySettings } from '../core/config/sections/mmproxy.js';
import type { MmproxyCounters } from '../dataplane/mmproxy/counters.js';
import type { MmproxyStatusView } from './admin-protocol.js';
import { MmproxySpliceRelay } from '../dataplane/mmproxy/splice-relay.js';
import { MmproxyTcpRelay, type HandedListener } from '../dataplane/mmproxy/tcp-relay.js';
import { MmproxyUdpRelay, type MmproxyUdpSessionSnapshot } from '../dataplane/mmproxy/udp-relay.js';
import type { EventSink } from '../dataplane/events.js';
import type { DescriptorBudget } from '../sys/descriptor-budget.js';
import type { SocketApi } from '../sys/socket.js';
import type { IoUringSupport } from '../core/net/io-uring.js';
import { hostIoUringSupport } from '../sys/io-uring.js';

/** A TCP entry on either engine: the same life (bind, adopt, release, drain, stop) and counters. */
type TcpRelay = MmproxyTcpRelay | MmproxySpliceRelay;

interface Running {
  readonly settings: MmproxySettings;
  readonly relay: TcpRelay | MmproxyUdpRelay;
}

export interface MmproxyListenersDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
  readonly budget?: DescriptorBudget;
  /**
   * The TCP engine of `protocol: tcp` entries: `splice` (the default) and `uring` run them in
   * engine threads (epoll and splice, or io_uring: where io_uring cannot run here, uring falls
   * back to splice, saying so once), `stream` on Node streams in the daemon's thread.
   */
  readonly engine?: 'splice' | 'stream' | 'uring';
  /** Whether io_uring runs here (tests replace the host's probe). */
  readonly uringSupport?: () => IoUringSupport;
  /** Engine threads per splice entry (the TCP workers setting: one per core by default). */
  readonly threads?: number;
  /** Per-flow events of the entries (TCP flows, UDP sessions) from the start; setFlowEvents switches them. */
  readonly flowEvents: boolean;
}

/** A prepared change of the mmproxy listeners (MmproxyListeners.prepare). */
export interface MmproxyChange {
  /** The settings of the entries the change removes or replaces: they drain once committed. */
  readonly leaving: readonly MmproxySettings[];
  /** Make the change; each leaving entry's drain, settled once its last flow ended. */
  commit(): { readonly settings: MmproxySettings; readonly drained: Promise<void> }[];
  abort(): Promise<void>;
}

export class MmproxyListeners {
  private readonly running = new Map<string, Running>();
  /** Entries replaced or removed by a reload whose flows are still finishing. */
  private readonly draining = new Set<TcpRelay>();
  /** udp entries replaced or removed by a reload that is being stopped. */
  private readonly stoppingUdp = new Set<Promise<void>>();
  /** The thread engine of TCP entries, once resolved (at the first one: uring probed, the choice logged). */
  private threadEngine: 'splice' | 'uring' | undefined;

  private flowEvents: boolean;

  constructor(private readonly deps: MmproxyListenersDeps) {
    this.flowEvents = deps.flowEvents;
  }

  /**
   * The per-flow events of every entry (running, draining, and those started from now on), as
   * the TPROXY listeners' Proxy.setFlowEvents: a reload that changes the log level or the dashboard.
   */
  setFlowEvents(on: boolean): void {
    this.flowEvents = on;
    for (const { relay } of this.running.values()) relay.setFlowEvents(on);
    for (const relay of this.draining) relay.setFlowEvents(on);
  }

  /** The `limit` busiest sessions in progress of each running `protocol: udp` entry (the dashboard's live bytes). */
  udpSessions(limit: number): { readonly name: string; readonly sessions: readonly MmproxyUdpSessionSnapshot[] }[] {
    return [...this.running.values()].flatMap(({ settings, relay }) => (relay instanceof MmproxyUdpRelay ? [{ name: settings.name, sessions: relay.sessions(limit) }] : []));
  }

  /** End session `id` of the running `protocol: udp` entry `name` (an operator, from the dashboard); false when it is not in progress. */
  closeUdpSession(name: string, id: number): boolean {
    const relay = this.running.get(name)?.relay;
    return relay instanceof MmproxyUdpRelay && relay.closeSession(id);
  }

  /**
   * Make the running listeners those of `wanted`, atomically (see above). A refusal throws (naming
   * the listener and address) and changes nothing.
   */
  async apply(wanted: readonly MmproxySettings[]): Promise<void> {
    void (await this.prepare(wanted)).commit();
    // udp entries replaced or removed have closed their sockets (their ports are free) on return.
    await Promise.all(this.stoppingUdp);
  }

  /**
   * The part of a change that can be refused: the settings checked and the new addresses bound.
   * Then `commit` (cannot fail) or `abort` (closes what was bound; nothing changed). Between the
   * two the old listeners still accept, so another part of a reload (the rules) can go first.
   */
  async prepare(wanted: readonly MmproxySettings[]): Promise<MmproxyChange> {
    const changed = wanted.filter((w) => !isDeepStrictEqual(this.running.get(w.name)?.settings, w));
    const leaving = [...this.running.values()].filter((r) => !isDeepStrictEqual(wanted.find((w) => w.name === r.settings.name), r.settings));
    // Built first: a setting the relay refuses throws before anything is opened.
    const fresh = changed.map((settings): Running => {
      const counters = this.running.get(settings.name)?.relay.counters;
      return { settings, relay: settings.protocol === 'udp' ? new MmproxyUdpRelay(settings, { ...this.deps, flowEvents: this.flowEvents }, counters) : this.tcpRelay(settings, counters) };
    });
    const handedOver = new Map<string, TcpRelay>();
    for (const r of leaving) if (!(r.relay instanceof MmproxyUdpRelay)) for (const key of r.relay.keys()) handedOver.set(key, r.relay);
    const bound: (TcpRelay | MmproxyUdpRelay)[] = [];
    const abort = async (): Promise<void> => {
      await Promise.all(bound.map((r) => r.stop()));
    };
    try {
      for (const f of fresh) {
        bound.push(f.relay);
        if (f.relay instanceof MmproxyUdpRelay) f.relay.start();
        else await f.relay.bind(new Set(f.relay.keys().filter((k) => handedOver.has(k))));
      }
    } catch (error) {
      await abort();
      throw error;
    }
    const commit = (): { settings: MmproxySettings; drained: Promise<void> }[] => {
      // Nothing here can fail: hand the sockets over, then let the old entries drain.
      for (const f of fresh) {
        if (f.relay instanceof MmproxyUdpRelay) continue;
        const handed = new Map<string, HandedListener>();
        for (const key of f.relay.keys()) {
          const server = handedOver.get(key)?.release(key);
          if (server) handed.set(key, server);
        }
        f.relay.adopt(handed);
      }
      const drains = leaving.map((r) => {
        this.running.delete(r.settings.name);
        const relay = r.relay;
        if (relay instanceof MmproxyUdpRelay) {
          // A UDP entry holds no flow a client would miss: it stops, and its stop is its drain.
          const stopped: Promise<void> = relay.stop().catch(() => undefined).then(() => void this.stoppingUdp.delete(stopped));
          this.stoppingUdp.add(stopped);
          return { settings: r.settings, drained: stopped };
        }
        this.draining.add(relay);
        return { settings: r.settings, drained: relay.drain().then(() => void this.draining.delete(relay)) };
      });
      for (const f of fresh) this.running.set(f.settings.name, f);
      return drains;
    };
    return { leaving: leaving.map((r) => r.settings), commit, abort };
  }

  private tcpRelay(settings: MmproxySettings, counters: MmproxyCounters | undefined): TcpRelay {
    const deps = { ...this.deps, flowEvents: this.flowEvents };
    if (this.deps.engine === 'stream') return new MmproxyTcpRelay(settings, deps, counters);
    return new MmproxySpliceRelay(settings, { ...deps, threads: this.deps.threads ?? 1, engine: this.resolveThreadEngine() }, counters);
  }

  /** uring where io_uring runs here, else splice; one log line (tcp.engine) when uring was asked for. */
  private resolveThreadEngine(): 'splice' | 'uring' {
    if (this.threadEngine) return this.threadEngine;
    if (this.deps.engine !== 'uring') return (this.threadEngine = 'splice');
    const host = (this.deps.uringSupport ?? hostIoUringSupport)();
    this.threadEngine = host.available ? 'uring' : 'splice';
    this.deps.emit({ type: 'tcp.engine', requested: 'uring', engine: this.threadEngine, why: `mmproxy TCP entries: ${host.available ? host.why : `${host.why}: the splice engine runs them instead`}` });
    return this.threadEngine;
  }

  /** Stop every listener, and reset the flows still in progress (draining ones too). */
  async stop(): Promise<void> {
    const all = [...[...this.running.values()].map((r) => r.relay), ...this.draining];
    this.running.clear();
    this.draining.clear();
    await Promise.all([...all.map((r) => r.stop()), ...this.stoppingUdp]);
  }

  /** Each listener's counters, by name. */
  counters(): Record<string, MmproxyCounters> {
    return Object.fromEntries([...this.running].map(([name, r]) => [name, r.relay.counters]));
  }

  /** Each listener's addresses, backends and counters, for status; and the connections replaced ones still finish. */
  status(): MmproxyStatusView {
    return {
      listeners: [...this.running.values()].map(({ settings: s, relay }) => ({ name: s.name, protocol: s.protocol, listen: s.listen, ...(s.backend4 ? { backend4: s.backend4 } : {}), ...(s.backend6 ? { backend6: s.backend6 } : {}), counters: relay.counters })),
      drainingConnections: [...this.draining].reduce((n, r) => n + r.connections, 0),
    };
  }
}

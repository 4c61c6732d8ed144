/**
 * The UDP half of an mmproxy listener (issue 16), what go-mmproxy does for UDP: every datagram from
 * the balancer starts with a PROXY v2 header (DGRAM); only allowed sources are read. Per
 * (balancer, header source, header destination) a session socket (IP_TRANSPARENT, IP_FREEBIND, the
 * upstream mark, SO_REUSEADDR) is bound to the header's source and connected to the backend (fixed
 * per family, or the header's destination); the payload after the header goes out on it. What the
 * backend sends back on a session socket goes to the balancer from the listener socket, without a
 * header. Sessions end when idle (idleTimeoutMs), on an error from the backend (ECONNREFUSED) and
 * with the relay; their count is capped (maxSessions) and each takes one descriptor of the
 * 'mmproxy' budget. The listening sockets and the epoll take theirs when the relay starts (refused
 * with ERR_RESOURCE_EXHAUSTED, nothing opened, when the budget cannot hold them) and give them back
 * when it stops.
 *
 * Every socket is a SocketApi (koffi) socket, never Node's dgram (FINDINGS: a connected UDP fd
 * cannot be adopted by dgram). One epoll carries them all; its wait runs on koffi's worker thread
 * (Epoll.waitAsync), so the loop shares the main thread with Node's without blocking it. Without
 * sessions the wait lasts IDLE_WAIT_MAX_MS (an idle listener wakes once a second); with sessions it
 * ends for the next idle sweep; stop() ends it at once through an eventfd (sys/wakeup.ts).
 *
 * Dropped and counted, never relayed: a source not allowed (source-not-allowed), a header the
 * decoder refuses (its reason: bad-signature, truncated, v2-too-long...), a header that is not
 * DGRAM (not-dgram), a LOCAL header (headersLocal: the balancer's health check, no session), a
 * new session beyond the cap (session-limit) or the descriptor budget (descriptor-budget).
 *
 * Each session's open and close are reported (mmproxy.udp.open / mmproxy.udp.close: the balancer,
 * the client the header named, its destination, the backend; at close datagrams and bytes each
 * way, duration and why) while `flowEvents` asks, as the TPROXY UDP relay reports udp.session.*;
 * counters are kept either way. sessions() lists those in progress with their counts now (the
 * dashboard's live bytes), closeSession() ends one (an operator, from the dashboard).
 */
import { errnoOf, TproxyError } from '../../core/errors.js';
import { EPOLLIN, IDLE_WAIT_MAX_MS, type Family } from '../../core/net/constants.js';
import { AllowedSources } from './allowed-sources.js';
import { encodeSockaddr, endpointKey, familyOf, type Endpoint } from '../../core/net/sockaddr.js';
import type { MmproxyEndpoint } from '../../core/config/sections/mmproxy.js';
import { decodeProxyDatagram } from '../../core/proxy-protocol/decode.js';
import type { DescriptorBudget } from '../../sys/descriptor-budget.js';
import { OPERATOR_CLOSE_REASON, type EventSink, type MmproxyUdpSession, type MmproxyUdpTally } from '../events.js';
import type { Epoll } from '../../sys/epoll.js';
import type { DatagramReceiver, SocketApi } from '../../sys/socket.js';
import { Wakeup } from '../../sys/wakeup.js';
import { topN } from '../tcp/flows.js';
import { count, emptyMmproxyCounters, type MmproxyCounters } from './counters.js';

export interface MmproxyUdpConfig {
  readonly name: string;
  readonly listen: readonly MmproxyEndpoint[];
  readonly allowedSources: readonly string[];
  readonly backend4?: MmproxyEndpoint | undefined;
  readonly backend6?: MmproxyEndpoint | undefined;
  readonly maxHeaderBytes: number;
  readonly upstreamMark: number;
  /** A session with no datagram either way this long is closed (0: never). */
  readonly idleTimeoutMs: number;
  /** Sessions open at once; a datagram that would open one more is dropped (session-limit). */
  readonly maxSessions: number;
}

export interface MmproxyUdpDeps {
  readonly sockets: SocketApi;
  readonly budget?: DescriptorBudget | undefined;
  /** Where the session events go (absent: nowhere). */
  readonly emit?: EventSink | undefined;
  /** Report each session's open and close from the start (default false); switched by setFlowEvents. */
  readonly flowEvents?: boolean | undefined;
}

/** A session in progress, as the relay counts it now. */
export interface MmproxyUdpSessionSnapshot extends MmproxyUdpSession, MmproxyUdpTally {
  /** Since its last datagram either way. */
  readonly idleMs: number;
}

interface Session {
  readonly key: string;
  readonly id: number;
  readonly fd: number;
  readonly listenerFd: number;
  /** The balancer's sockaddr: where replies go, from the listener socket. */
  readonly balancerSockaddr: Buffer;
  readonly balancer: Endpoint;
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly backend: Endpoint;
  readonly startedMs: number;
  lastActiveMs: number;
  datagramsFromClient: number;
  datagramsFromBackend: number;
  bytesFromClient: number;
  bytesFromBackend: number;
}

/**
 * Session ids, unique in the process: a reload's new entry runs beside the old one of the same
 * name for a moment, and their sessions must not share an id (the dashboard keys flows by it).
 */
let nextSessionId = 1;

/** The largest UDP payload. */
const MAX_DATAGRAM = 65_535;
/** Datagrams read per ready socket per wait: one busy socket cannot starve the others. */
const READS_PER_WAKE = 64;
/** Idle sweeps while sessions exist: a session ends at most this long after its idle timeout. */
const SWEEP_EVERY_MS = 1000;

export class MmproxyUdpRelay {
  readonly counters: MmproxyCounters;
  private readonly allowed: AllowedSources;
  private readonly listeners: number[] = [];
  private readonly byKey = new Map<string, Session>();
  private readonly byFd = new Map<number, Session>();
  private readonly receiver: DatagramReceiver;
  private readonly reply = Buffer.alloc(MAX_DATAGRAM);
  private epoll: Epoll | undefined;
  /** Ends the loop's wait when stop() is called (it lasts IDLE_WAIT_MAX_MS while no session exists). */
  private wakeup: Wakeup | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private lastSweepMs = Date.now();
  /** Descriptors of the budget held by the listening sockets and the epoll (0 until start). */
  private held = 0;
  private flowEvents: boolean;

  constructor(
    private readonly config: MmproxyUdpConfig,
    private readonly deps: MmproxyUdpDeps,
    counters?: MmproxyCounters,
  ) {
    this.allowed = new AllowedSources(config.allowedSources, `mmproxy ${config.name}: allowedSources`);
    this.counters = counters ?? emptyMmproxyCounters();
    this.receiver = deps.sockets.receiver(MAX_DATAGRAM);
    this.flowEvents = deps.flowEvents ?? false;
  }

  /** Report sessions opened and closed from now on, or stop reporting them; sessions go on either way. */
  setFlowEvents(on: boolean): void {
    this.flowEvents = on;
  }

  /** The `limit` sessions in progress with the most bytes both ways, busiest first. */
  sessions(limit: number): MmproxyUdpSessionSnapshot[] {
    const now = Date.now();
    return topN(this.byKey.values(), limit, (s) => s.bytesFromClient + s.bytesFromBackend).map((s) => ({
      id: s.id,
      balancer: s.balancer,
      client: s.client,
      originalDestination: s.destination,
      backend: s.backend,
      datagramsFromClient: s.datagramsFromClient,
      datagramsFromBackend: s.datagramsFromBackend,
      bytesFromClient: s.bytesFromClient,
      bytesFromBackend: s.bytesFromBackend,
      idleMs: Math.max(0, now - s.lastActiveMs),
    }));
  }

  /** An operator ends session `id` (its socket closes; closed as closed-by-operator). False when none is in progress. */
  closeSession(id: number): boolean {
    for (const s of this.byKey.values()) {
      if (s.id !== id) continue;
      this.close(s, OPERATOR_CLOSE_REASON);
      return true;
    }
    return false;
  }

  /**
   * Open the listeners and start the loop; a bind refused throws (naming the address) and opens
   * nothing, as does a descriptor budget that cannot hold the listening sockets, the epoll and the wake-up.
   */
  start(): void {
    const { sockets, budget } = this.deps;
    const wanted = this.config.listen.length + 2;
    if (budget && !budget.acquire('mmproxy', wanted)) {
      const { capacity } = budget.snapshot();
      throw new TproxyError(
        'ERR_RESOURCE_EXHAUSTED',
        `mmproxy ${this.config.name}: the descriptor budget cannot hold its ${wanted} descriptors (${this.config.listen.length} listening socket${this.config.listen.length === 1 ? '' : 's'}, its epoll and its wake-up eventfd): ${budget.available('mmproxy')} left of ${capacity} (sessions and listeners of every kind share them): raise the descriptor limit (LimitNOFILE= in the systemd unit, ulimit -n)`,
        { errno: 'EMFILE' },
      );
    }
    this.held = wanted;
    let epoll: Epoll;
    try {
      epoll = sockets.epoll(256);
    } catch (error) {
      this.releaseHeld();
      throw error;
    }
    let wakeup: Wakeup | undefined;
    try {
      for (const at of this.config.listen) {
        const family = familyOf(at.address);
        const fd = sockets.open({ family, transport: 'udp', reuseAddress: true });
        this.listeners.push(fd);
        sockets.bind(fd, { family, address: at.address, port: at.port });
        epoll.add(fd, EPOLLIN);
      }
      wakeup = Wakeup.create();
      epoll.add(wakeup.fd, EPOLLIN);
    } catch (error) {
      for (const fd of this.listeners.splice(0)) sockets.close(fd);
      wakeup?.close();
      epoll.close();
      this.releaseHeld();
      throw error;
    }
    this.epoll = epoll;
    this.wakeup = wakeup;
    this.loop = this.run(epoll);
  }

  get sessionCount(): number {
    return this.byKey.size;
  }

  /** Stop reading (the wait ends at once), close every session and listener. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeup?.signal();
    await this.loop;
    this.loop = undefined;
    for (const s of [...this.byKey.values()]) this.close(s, 'stopped');
    for (const fd of this.listeners.splice(0)) this.deps.sockets.close(fd);
    this.epoll?.close();
    this.epoll = undefined;
    this.wakeup?.close();
    this.wakeup = undefined;
    this.releaseHeld();
    if (this.failure) throw this.failure;
  }

  private releaseHeld(): void {
    if (this.held > 0) this.deps.budget?.release('mmproxy', this.held);
    this.held = 0;
  }

  /** Why the loop ended before stop() (thrown by stop()); the listener no longer reads then. */
  private failure: Error | undefined;

  private async run(epoll: Epoll): Promise<void> {
    try {
      await this.turn(epoll);
    } catch (error) {
      this.failure = error instanceof Error ? error : new Error(String(error));
    }
  }

  private async turn(epoll: Epoll): Promise<void> {
    while (!this.stopping) {
      const n = await epoll.waitAsync(this.waitMs(Date.now()));
      if (this.stopping) return;
      for (let i = 0; i < n; i++) {
        const fd = epoll.readyFd(i);
        if (fd === this.wakeup?.fd) {
          this.wakeup.drain();
          continue;
        }
        const session = this.byFd.get(fd);
        if (session) this.fromBackend(session);
        else if (this.listeners.includes(fd)) this.fromBalancer(fd);
      }
      const now = Date.now();
      if (now - this.lastSweepMs >= SWEEP_EVERY_MS) this.sweep(now);
    }
  }

  /**
   * Until the next idle sweep while sessions can expire; IDLE_WAIT_MAX_MS when none can (traffic or
   * stop() ends the wait sooner): never forever, since process.exit() waits for the pool thread in it.
   */
  private waitMs(now: number): number {
    if (this.byKey.size === 0 || this.config.idleTimeoutMs <= 0) return IDLE_WAIT_MAX_MS;
    return Math.max(0, Math.min(IDLE_WAIT_MAX_MS, this.lastSweepMs + SWEEP_EVERY_MS - now));
  }

  private fromBalancer(listenerFd: number): void {
    for (let i = 0; i < READS_PER_WAKE; i++) {
      let d;
      try {
        d = this.receiver.receive(listenerFd);
      } catch {
        return;
      }
      if (!d) return;
      if (!this.allowed.has(d.source.address)) {
        count(this.counters.rejected, 'source-not-allowed');
        continue;
      }
      const datagram = this.receiver.data.subarray(0, d.length);
      const decoded = decodeProxyDatagram(datagram, { maxV2Bytes: this.config.maxHeaderBytes });
      if (decoded.kind !== 'header') {
        count(this.counters.rejected, decoded.kind === 'invalid' ? decoded.reason : 'truncated');
        continue;
      }
      const { header, take } = decoded;
      if (header.command === 'local' || !header.addresses) {
        this.counters.headersLocal++;
        continue;
      }
      if (header.transport !== 'udp') {
        count(this.counters.rejected, 'not-dgram');
        continue;
      }
      this.counters.headersProxy++;
      const { source, destination } = header.addresses;
      const key = `${listenerFd}|${endpointKey(d.source)}|${endpointKey(source)}|${endpointKey(destination)}`;
      const session = this.byKey.get(key) ?? this.open(key, listenerFd, d.source, source, destination);
      if (!session) continue;
      session.lastActiveMs = Date.now();
      const payload = datagram.subarray(take);
      const sent = this.deps.sockets.sendDatagram(session.fd, payload, payload.length, null);
      if (sent >= 0) {
        this.counters.bytesFromClient += sent;
        session.bytesFromClient += sent;
        session.datagramsFromClient++;
      } else count(this.counters.connectErrors, 'send-failed');
    }
  }

  private open(key: string, listenerFd: number, balancer: Endpoint, source: Endpoint, destination: Endpoint): Session | undefined {
    if (this.byKey.size >= this.config.maxSessions) {
      count(this.counters.rejected, 'session-limit');
      return undefined;
    }
    if (this.deps.budget && !this.deps.budget.acquire('mmproxy')) {
      count(this.counters.rejected, 'descriptor-budget');
      return undefined;
    }
    const { sockets } = this.deps;
    const family: Family = source.family;
    const fixed = family === 4 ? this.config.backend4 : this.config.backend6;
    const backend: Endpoint = fixed ? { family, address: fixed.address, port: fixed.port } : destination;
    let fd = -1;
    try {
      fd = sockets.open({ family, transport: 'udp', transparent: true, freebind: true, reuseAddress: true, mark: this.config.upstreamMark });
      sockets.bind(fd, source);
      sockets.connect(fd, backend);
      // Between bind and connect the socket could take datagrams meant for another socket bound to
      // this address and port: nothing legitimate can have arrived before our first send.
      for (let i = 0; i < READS_PER_WAKE && sockets.recv(fd, this.reply) !== null; i++);
      this.epoll!.add(fd, EPOLLIN);
    } catch (error) {
      if (fd >= 0) sockets.close(fd);
      this.deps.budget?.release('mmproxy');
      count(this.counters.connectErrors, errnoOf(error));
      return undefined;
    }
    const now = Date.now();
    const session: Session = {
      key,
      id: nextSessionId++,
      fd,
      listenerFd,
      balancerSockaddr: encodeSockaddr(balancer),
      balancer,
      client: source,
      destination,
      backend,
      startedMs: now,
      lastActiveMs: now,
      datagramsFromClient: 0,
      datagramsFromBackend: 0,
      bytesFromClient: 0,
      bytesFromBackend: 0,
    };
    this.byKey.set(key, session);
    this.byFd.set(fd, session);
    this.counters.active = this.byKey.size;
    if (this.flowEvents) this.deps.emit?.({ type: 'mmproxy.udp.open', listener: this.config.name, id: session.id, balancer, client: source, originalDestination: destination, backend });
    return session;
  }

  private fromBackend(session: Session): void {
    const { sockets } = this.deps;
    for (let i = 0; i < READS_PER_WAKE; i++) {
      let n: number | null;
      try {
        n = sockets.recv(session.fd, this.reply);
      } catch (error) {
        // ECONNREFUSED and the like: the backend's ICMP error ends the session.
        this.close(session, errnoOf(error));
        return;
      }
      if (n === null) return;
      session.lastActiveMs = Date.now();
      const sent = sockets.sendDatagram(session.listenerFd, this.reply, n, session.balancerSockaddr);
      if (sent >= 0) {
        this.counters.bytesFromBackend += sent;
        session.bytesFromBackend += sent;
        session.datagramsFromBackend++;
      }
    }
  }

  private sweep(now: number): void {
    this.lastSweepMs = now;
    const idle = this.config.idleTimeoutMs;
    if (idle <= 0) return;
    for (const s of [...this.byKey.values()]) if (now - s.lastActiveMs >= idle) this.close(s, 'idle');
  }

  private close(session: Session, reason: string): void {
    if (this.byKey.get(session.key) !== session) return;
    this.byKey.delete(session.key);
    this.byFd.delete(session.fd);
    this.epoll?.remove(session.fd);
    try {
      this.deps.sockets.close(session.fd);
    } catch {
      // Already gone: nothing left to release but the budget.
    }
    this.deps.budget?.release('mmproxy');
    count(this.counters.closed, reason);
    this.counters.active = this.byKey.size;
    if (this.flowEvents)
      this.deps.emit?.({
        type: 'mmproxy.udp.close',
        listener: this.config.name,
        id: session.id,
        balancer: session.balancer,
        client: session.client,
        originalDestination: session.destination,
        backend: session.backend,
        datagramsFromClient: session.datagramsFromClient,
        datagramsFromBackend: session.datagramsFromBackend,
        bytesFromClient: session.bytesFromClient,
        bytesFromBackend: session.bytesFromBackend,
        durationMs: Date.now() - session.startedMs,
        reason,
      });
  }
}

/**
 * The UDP relay loop (run in a worker thread by worker.ts): every session socket and the listeners
 * watched by one engine (sys/datagram-io.ts): `epoll` (epoll_wait, recvmmsg/sendmmsg between them)
 * or `uring` (a multishot recvmsg per socket into provided buffers, sends queued as SQEs, one
 * io_uring_enter per turn). The loop is the same for both; with uring a send's failure comes back a
 * turn later (queuedSendFailed) and is handled as the epoll engine handles it at once.
 *
 * A session belongs to one client. It holds one upstream socket (SO_MARK; in transparent mode
 * IP_TRANSPARENT and bound to the client's address and port) and one reply path per remote:
 *
 *   endpoint-dependent   session = (client, original destination); the upstream socket is
 *                        connected to the destination, so the kernel drops anyone else's datagrams
 *                        and reports ICMP errors (ECONNREFUSED ends the session); one remote.
 *   endpoint-independent session = client; the upstream socket is unconnected and shared by every
 *                        destination; a datagram from a new remote opens a reply path for it.
 *
 * A reply path is a socket with IP_TRANSPARENT + SO_REUSEADDR bound to the remote's address and
 * port and connected to the client: replies leave with the remote as source address AND port, and
 * the kernel delivers the client's later datagrams to that remote straight to it. Between bind()
 * and connect() it can receive datagrams of OTHER clients to the same remote: they are drained
 * right after connect() and handed to their own sessions (never answered through this one); one
 * looked up before connect() but queued after that drain is handed over the same way when read.
 * When the bind fails with EADDRINUSE (a local service holds that port on a wildcard address
 * without SO_REUSEADDR), replies go through a raw socket that writes the UDP header itself
 * (sys/raw-udp.ts), and the client's later datagrams keep arriving through the listener.
 *
 * Endpoint-dependent mapping with upstream transparent: the upstream socket is bound to the
 * client's own address and port and connected to the destination, so the divert rule brings only
 * the destination's datagrams to it; anyone else's datagram to the client's address and port would
 * find no socket and be forwarded to the client by the router. A guard socket per client endpoint
 * (IP_TRANSPARENT, SO_REUSEADDR, bound to that address and port, unconnected) is what the kernel's
 * lookup finds for those instead (a connected socket wins for its own remote), so the divert rule
 * delivers them here, where they are dropped and counted (`unsolicited`). Only the original
 * destination answers, as the mapping says.
 *
 * Routes: the first datagram of a flow (client, original destination) is routed (RouteTable, protocol
 * udp): `reject` drops it and every later one (counted, nothing opened); `direct` / `transparent`
 * say how the session's upstream socket is bound. When a route could match on a name, that first
 * datagram is read for a QUIC Initial's server name; anything else routes without a name, at once.
 * A ClientHello that takes more than one Initial datagram (Chrome's post-quantum one) holds the
 * flow's datagrams (quic-hold.ts) until its name is in, it is given up, or the sniff timeout
 * passes; then they are sent in order. Endpoint-independent sessions are per
 * (client, outbound), so a client's flows that route to different outbounds get different upstream
 * sockets. A session keeps its outbound for its life.
 *
 * SOCKS5 outbound (socks5-association.ts): the session's upstream socket is connected to the
 * proxy's UDP relay once a TCP control connection, driven by this same epoll, got its UDP ASSOCIATE
 * reply; every datagram goes out behind the RFC 1928 header naming its remote, and comes back
 * behind one naming its source, which picks the reply path as the source address does otherwise.
 * The association is per session: per flow, or per (client, outbound) with endpoint-independent
 * mapping (full cone through the proxy). Its end ends the session; it fails that session only.
 *
 * Full cone and routes: a datagram from a new remote is routed as the flow client -> remote would
 * be; a remote whose route is `reject` is dropped and counted, never given a reply path.
 *
 * Sent headers: upstream and reply sockets get the listener's DSCP and TTL when opened; with
 * `dscp: copy` a session's sockets get the DSCP of the datagram that opened it (IP_RECVTOS /
 * IPV6_RECVTCLASS on the listener). Replies through the raw fallback keep the kernel's defaults.
 */
import type { UdpLoopTestSeam } from './test-seam.js';
import { TproxyError } from '../../core/errors.js';
import { errnoName } from '../../core/errno.js';
import { EPOLLIN, IDLE_WAIT_MAX_MS, type Family } from '../../core/net/constants.js';
import { anyAddress, encodeSockaddr, endpointKey, type Endpoint } from '../../core/net/sockaddr.js';
import { udpFallbackRoute, type UdpFallbackRoute } from '../../core/net/udp-datagram.js';
import type { PinnedSockaddr } from '../../sys/datagram-batch.js';
import { DATAGRAM_IO_DESCRIPTORS, type DatagramIo, type UdpEngineKind } from '../../sys/datagram-io.js';
import type { UdpLoopBudget } from './loop-budget.js';
import type { Epoll } from '../../sys/epoll.js';
import type { RawUdpSender } from '../../sys/raw-udp.js';
import type { DatagramReceiver, SocketApi } from '../../sys/socket.js';
import { OPERATOR_CLOSE_REASON, type ProxyEvent } from '../events.js';
import { errorReasonOf, UDP_COUNTER_INDEX as N, UDP_ERROR_INDEX as E, type UdpErrorReason } from './counters.js';
import type { UdpLoopConfig, UdpSessionSnapshot } from './protocol.js';
import type { RunningUdpEngine } from './engines.js';
import { type RouteDecision, RouteTable } from '../../core/route/table.js';
import { QuicHold, type ExpiredHold, type QuicHoldStep } from './quic-hold.js';
import { migrateCounters, outboundSlot, routedLayoutOf, routeSlot, UDP_ROUTED_INDEX as R, type UdpRoutedLayout } from './counters.js';
import type { RoutingConfig } from '../../core/route/config.js';
import { SessionTable, sessionKey } from './session-table.js';
import { Socks5Association, SOCKS5_SETUP_TIMEOUT_MS, type Socks5FailureReason } from './socks5-association.js';
import { decodeSocks5UdpDatagram } from '../../core/upstream/socks5-udp.js';
import { encodeSocks5Address, type Socks5Address } from '../../core/upstream/socks5-address.js';
import { formatUpstreamProxy } from '../../core/upstream/proxy-url.js';
import { topN } from '../tcp/flows.js';

interface Session {
  readonly key: string;
  readonly id: number;
  readonly client: Endpoint;
  /** The client's sockaddr, to check the source of datagrams on reply sockets. */
  readonly clientSockaddr: Buffer;
  /** The first original destination. */
  readonly destination: Endpoint;
  readonly upstreamFd: number;
  /** Upstream socket bound to the client's address and port (the transparent outbound). */
  readonly transparent: boolean;
  /** The route and outbound of the flow that opened the session. */
  readonly decision: RouteDecision;
  /** First counter slot of its route's and its outbound's blocks (moved when a reload grows the counters). */
  routeSlot: number;
  outboundSlot: number;
  /** DSCP of everything the session sends (undefined: the kernel's default). */
  readonly dscp: number | undefined;
  /** Remotes by endpointKey. */
  readonly peers: Map<string, Peer>;
  /** Through a socks5 outbound: the association; upstreamFd then talks to its relay. */
  readonly socks: Socks5Association | undefined;
  lastActiveMs: number;
  datagramsFromClient: number;
  datagramsFromServer: number;
  bytesFromClient: number;
  bytesFromServer: number;
}

interface Peer {
  readonly session: Session;
  readonly remote: Endpoint;
  /** The remote's sockaddr, pinned for sendmmsg on an unconnected upstream socket. */
  readonly pinned: PinnedSockaddr;
  /** Connected reply socket, or -1 when replies use the raw fallback. */
  readonly replyFd: number;
  readonly fallback: UdpFallbackRoute | undefined;
  /** Through a socks5 outbound: RSV FRAG ATYP DST.ADDR DST.PORT naming this remote. */
  readonly socksHeader: Buffer | undefined;
}

/** The guard of one client endpoint, shared by that endpoint's sessions. */
interface Guard {
  readonly fd: number;
  readonly key: string;
  sessions: number;
}

type FdOwner = { readonly kind: 'listener' } | { readonly kind: 'upstream'; readonly session: Session } | { readonly kind: 'socks-control'; readonly session: Session } | { readonly kind: 'reply'; readonly peer: Peer } | { readonly kind: 'guard'; readonly guard: Guard } | { readonly kind: 'wake' };

/** A routed flow: its decision, the DSCP of its first datagram, and the datagrams held before the one at hand. */
interface Routed {
  readonly decision: RouteDecision;
  readonly dscp: number | undefined;
  readonly held: readonly Buffer[];
}

interface Pending {
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly data: Buffer;
}

/** The key of one flow: its client and the remote it talks to. */
function flowKey(client: Endpoint, remote: Endpoint): string {
  return `${endpointKey(client)}>${endpointKey(remote)}`;
}

/** Datagrams taken off a new reply socket per drain: bounds the handover queue. */
const MAX_DRAIN = 1024;
/** A guard only drops what it receives: a small buffer (the kernel doubles it). */
const GUARD_RECEIVE_BYTES = 16 * 1024;
/** At most one drop event per reason per this period; the counters count every drop. */
const DROP_EVENT_INTERVAL_MS = 1000;

export interface UdpLoopDeps {
  readonly api: SocketApi;
  readonly counters: Float64Array;
  readonly emit: (event: ProxyEvent) => void;
  /** Addresses of this host: a destination among them would loop. */
  readonly localAddresses: () => ReadonlySet<string>;
  readonly now: () => number;
  /** Whether to report each session's open and close as events now (switched at run time). */
  readonly flowEvents: () => boolean;
  /** The process's descriptor budget: asked before every socket a session opens (counted per loop: loop-budget.ts). */
  readonly budget: UdpLoopBudget;
  /** Tests only (test-seam.ts): called between bind() and connect() of a reply socket. */
  readonly testSeam?: UdpLoopTestSeam;
  /**
   * The owner's wake-up (sys/wakeup.ts): written after each message it posts and when it stops the
   * loop, so the loop can block long while nothing is timed (see waitMs).
   */
  readonly wake?: { readonly fd: number; drain(): void };
}

/** Sessions evicted at most to find room for one descriptor (each frees two or more). */
const MAX_EVICTIONS_PER_DESCRIPTOR = 4;

export class UdpLoop {
  private readonly api: SocketApi;
  /** The engine's receives and sends (sys/datagram-io.ts): epoll, or io_uring. */
  private readonly batch: DatagramIo;
  private readonly drainRx: DatagramReceiver;
  private readonly epoll: Epoll;
  private readonly sessions = new SessionTable<Session>();
  private readonly owners = new Map<number, FdOwner>();
  private readonly raw = new Map<Family, RawUdpSender>();
  private readonly pending: Pending[] = [];
  private readonly lastDropEvent = new Map<UdpErrorReason, number>();
  private c: Float64Array;
  private readonly independent: boolean;
  /** Guards by client endpointKey (endpoint-dependent mapping with upstream transparent only). */
  private readonly guards = new Map<string, Guard>();
  private routes: RouteTable;
  private layout: UdpRoutedLayout;
  /** The peer of each flow (client endpointKey > remote endpointKey), to find a flow's session. */
  private readonly flows = new Map<string, Peer>();
  /** Flows waiting for the rest of a QUIC ClientHello (their route could depend on its name). */
  private readonly quic: QuicHold;
  /** Sessions whose SOCKS5 association is not ready yet (their set-up deadline is checked). */
  private readonly settingUp = new Set<Session>();
  /** A datagram with its SOCKS5 header in front, built here before each send. */
  private readonly wrapped: Buffer;
  /** Sessions failed per outbound and reason since the last line about them (one line per second at most). */
  private readonly failures = new Map<string, { lastMs: number; since: number }>();
  private nextId = 1;
  private now: number;
  private nextExpiryCheck = 0;
  private woken = false;
  /** Descriptors of the budget the engine's own I/O holds (DATAGRAM_IO_DESCRIPTORS), given back at shutdown. */
  private ioDescriptors = 0;
  /** The engine that runs (set by openIo): its owner logs it in one udp.engine line. */
  private running: RunningUdpEngine = { engine: 'epoll' };

  constructor(
    private readonly config: UdpLoopConfig,
    listenerFds: readonly number[],
    private readonly deps: UdpLoopDeps,
  ) {
    this.api = deps.api;
    this.c = deps.counters;
    this.independent = config.mapping === 'endpoint-independent';
    this.routes = RouteTable.compile(config.routing);
    this.layout = config.layout ?? routedLayoutOf(config.routing);
    this.quic = new QuicHold({ timeoutMs: config.sniffTimeoutMs ?? 300 });
    this.batch = this.openIo(config);
    this.batch.onSendFailed = (fd, errno, count) => this.queuedSendFailed(fd, errno, count);
    this.drainRx = this.api.receiver(config.maxDatagramBytes);
    this.wrapped = Buffer.alloc(config.maxDatagramBytes + 4 + 256 + 2);
    this.epoll = this.batch.epoll;
    this.now = deps.now();
    for (const fd of listenerFds) {
      this.owners.set(fd, { kind: 'listener' });
      this.batch.watch(fd);
    }
    if (deps.wake) {
      this.owners.set(deps.wake.fd, { kind: 'wake' });
      this.epoll.add(deps.wake.fd, EPOLLIN);
    }
  }

  /** The engine that runs, and why it is epoll when uring was asked for (its owner's udp.engine line: udpEngineLine). */
  get engine(): RunningUdpEngine {
    return this.running;
  }

  /**
   * The engine's I/O. A uring ring that cannot be set up here (the host probe passed, but this
   * ring's buffers or size were refused) leaves the loop on epoll; `engine` says why.
   */
  private openIo(config: UdpLoopConfig): DatagramIo {
    if (config.engine === 'uring') {
      this.takeIoDescriptors('uring');
      try {
        const io = this.api.datagramIo('uring', config.batchSize, config.maxDatagramBytes);
        this.running = { engine: 'uring' };
        return io;
      } catch (error) {
        this.giveBackIoDescriptors();
        const why = error instanceof Error ? error.message : String(error);
        this.running = { engine: 'epoll', fallback: `the io_uring ring could not be set up (${why}): the epoll engine runs instead` };
      }
    }
    this.takeIoDescriptors('epoll');
    try {
      return this.api.datagramIo('epoll', config.batchSize, config.maxDatagramBytes);
    } catch (error) {
      this.giveBackIoDescriptors();
      throw error;
    }
  }

  /** The engine's own descriptors from the budget, before they are opened (no session exists yet to evict). */
  private takeIoDescriptors(engine: UdpEngineKind): void {
    const n = DATAGRAM_IO_DESCRIPTORS[engine];
    const { budget } = this.deps;
    if (!budget.acquire('udp', n)) {
      throw new TproxyError(
        'ERR_RESOURCE_EXHAUSTED',
        `udp relay: the descriptor budget cannot hold the ${engine} engine's ${n} descriptor${n === 1 ? '' : 's'} (${budget.available('udp')} left of ${budget.snapshot().capacity}): raise the descriptor limit (LimitNOFILE= in the systemd unit, ulimit -n)`,
        { errno: 'EMFILE' },
      );
    }
    this.ioDescriptors = n;
  }

  private giveBackIoDescriptors(): void {
    this.giveBack(this.ioDescriptors);
    this.ioDescriptors = 0;
  }

  /**
   * How long runOnce may block before something timed is due: the next idle sweep while sessions
   * exist (or SOCKS5 set-ups wait), the first sniff deadline while QUIC flows are held; when
   * nothing is, IDLE_WAIT_MAX_MS, so an idle loop sleeps until traffic or its owner's wake-up
   * (once a second at most, so an exit without a stop is not held up).
   */
  waitMs(): number {
    const now = this.deps.now();
    let due = now + IDLE_WAIT_MAX_MS;
    if (this.sessions.size > 0 || this.settingUp.size > 0) due = Math.min(due, this.nextExpiryCheck);
    const held = this.quic.nextDeadline();
    if (held !== undefined) due = Math.min(due, held);
    return Math.max(0, Math.ceil(due - now));
  }

  /** Whether the owner's wake-up fired since the last call (a message waits for the thread): cleared by the call. */
  takeWoken(): boolean {
    const woken = this.woken;
    this.woken = false;
    return woken;
  }

  /** Wait up to timeoutMs (-1: until an event) for traffic, relay what came, expire idle sessions. */
  runOnce(timeoutMs: number): void {
    const ready = this.batch.wait(timeoutMs);
    this.now = this.deps.now();
    for (let i = 0; i < ready; i++) {
      const owner = this.owners.get(this.batch.readyFd(i));
      if (!owner) continue;
      if (owner.kind === 'wake') {
        this.deps.wake?.drain();
        this.woken = true;
        continue;
      }
      if (owner.kind === 'listener') this.readListener(this.batch.readyFd(i));
      else if (owner.kind === 'upstream') {
        if (owner.session.socks) this.readRelay(owner.session);
        else this.readUpstream(owner.session);
      } else if (owner.kind === 'socks-control') this.onControl(owner.session, this.batch.readyEvents(i));
      else if (owner.kind === 'guard') this.readGuard(owner.guard);
      else this.readReply(owner.peer);
      this.handOver();
    }
    if (this.quic.size > 0) for (const held of this.quic.expired(this.now)) this.releaseHeld(held);
    if (this.now >= this.nextExpiryCheck) {
      // Sessions end within a tenth of the idle timeout (at most 1 s) after it passed.
      this.nextExpiryCheck = this.now + Math.min(1000, Math.max(10, this.config.idleTimeoutMs / 10));
      for (const s of this.sessions.expired(this.now, this.config.idleTimeoutMs)) {
        // A datagram that came after epoll_wait returned (the turn can take long under load) is
        // waiting on one of its sockets: the session is not idle, and closing would drop it.
        if (this.hasQueued(s)) {
          this.sessions.touch(s, this.now);
          continue;
        }
        this.bump(N.sessionsExpired);
        this.close(s, 'idle-timeout');
      }
      for (const s of this.settingUp) if (s.socks && this.now >= s.socks.deadlineMs) this.socksFailed(s, 'socks5-timeout', `no UDP ASSOCIATE reply within ${SOCKS5_SETUP_TIMEOUT_MS} ms`);
    }
  }

  /**
   * A reload's routing: new flows take it; sessions keep their decision (outbound and sockets).
   * The counters move to `counters`, laid out as `layout` (every name of the old layout and the
   * new ones): this loop is their one writer, so it copies them and counts on there from now on.
   */
  setRouting(routing: RoutingConfig, layout: UdpRoutedLayout, counters: Float64Array, sniffTimeoutMs?: number): void {
    const routes = RouteTable.compile(routing);
    migrateCounters(this.c, this.layout, counters, layout);
    this.routes = routes;
    this.layout = layout;
    this.c = counters;
    if (sniffTimeoutMs !== undefined) this.quic.setTimeout(sniffTimeoutMs);
    for (const session of this.sessions.values()) {
      const slots = this.routedSlots(session.decision);
      session.routeSlot = slots.route;
      session.outboundSlot = slots.outbound;
    }
  }

  /** The `limit` sessions in progress with the most bytes both ways, busiest first. */
  sessionSnapshot(limit: number): UdpSessionSnapshot[] {
    const now = this.deps.now();
    return topN(this.sessions.values(), limit, (s) => s.bytesFromClient + s.bytesFromServer).map((s) => ({
      id: s.id,
      client: s.client,
      originalDestination: s.destination,
      datagramsFromClient: s.datagramsFromClient,
      datagramsFromServer: s.datagramsFromServer,
      bytesFromClient: s.bytesFromClient,
      bytesFromServer: s.bytesFromServer,
      idleMs: Math.max(0, now - s.lastActiveMs),
    }));
  }

  /** An operator ends session `id` (its sockets close, reported as closed-by-operator, counted). False when none is in progress. */
  closeSession(id: number): boolean {
    for (const s of this.sessions.values()) {
      if (s.id !== id) continue;
      this.bump(N.sessionsClosedByOperator);
      this.close(s, OPERATOR_CLOSE_REASON);
      return true;
    }
    return false;
  }

  /** Close every session (reported) and the loop's own fds; listeners stay with their owner. */
  shutdown(): void {
    this.quic.clear();
    for (const s of [...this.sessions.values()]) this.close(s, 'stopped');
    for (const g of [...this.guards.values()]) {
      this.batch.forget(g.fd);
      this.api.close(g.fd);
      this.owners.delete(g.fd);
      this.giveBack();
    }
    this.guards.clear();
    for (const sender of this.raw.values()) {
      sender.close();
      this.giveBack();
    }
    this.raw.clear();
    this.batch.close();
    this.giveBackIoDescriptors();
  }

  private bump(slot: number, n = 1): void {
    this.c[slot] = (this.c[slot] ?? 0) + n;
  }

  /** Count a drop or failure; report it as an event at most once per reason per second. */
  private count(reason: UdpErrorReason, source?: Endpoint, n = 1, error?: unknown): void {
    this.bump(E[reason], n);
    const last = this.lastDropEvent.get(reason);
    if (last !== undefined && this.now - last < DROP_EVENT_INTERVAL_MS) return;
    this.lastDropEvent.set(reason, this.now);
    this.deps.emit(source ? { type: 'udp.drop', reason, source } : { type: 'udp.drop', reason });
    if (error !== undefined) {
      this.deps.emit({ type: 'error', code: error instanceof TproxyError ? error.code : 'ERR_SYSCALL', message: `udp ${reason}: ${error instanceof Error ? error.message : JSON.stringify(error)}` });
    }
  }

  // ---- client -> server ----

  private readListener(fd: number): void {
    const b = this.batch;
    const n = b.receive(fd);
    if (n < 0) return this.count('other');
    for (let i = 0; i < n; i++) {
      if (b.truncated(i)) {
        this.count('truncated', b.source(i));
        continue;
      }
      const destination = b.originalDestination(i);
      if (!destination) {
        this.count('no-original-destination', b.source(i));
        continue;
      }
      this.fromClient(b.source(i), destination, b.slot(i), b.lengths[i] ?? 0, i);
    }
  }

  /**
   * A datagram from `client` to `destination` that did not arrive on a reply socket; `slot`: its
   * batch slot when it came from the listener (for its DSCP).
   */
  private fromClient(client: Endpoint, destination: Endpoint, data: Buffer, length: number, slot = -1): void {
    const peer = this.flows.get(flowKey(client, destination)) ?? this.openFlow(client, destination, data, length, slot);
    if (peer) this.relayFromClient(peer, data, length);
  }

  /** A client's datagram on a flow with its reply path: counted and sent upstream. */
  private relayFromClient(peer: Peer, data: Buffer, length: number): void {
    const { session } = peer;
    this.bump(N.datagramsFromClients);
    this.bump(N.bytesFromClients, length);
    session.datagramsFromClient++;
    session.bytesFromClient += length;
    this.bumpRouted(session, R.datagramsFromClients, R.bytesFromClients, 1, length);
    this.sessions.touch(session, this.now);
    if (session.socks) return this.sendToRelay(peer, data, length);
    const sent = this.api.sendDatagram(session.upstreamFd, data, length, this.independent ? peer.pinned.sockaddr : null);
    if (sent < 0) this.upstreamSendFailed(session, -sent, 1);
  }

  private readReply(peer: Peer): void {
    const { session } = peer;
    const b = this.batch;
    const n = b.receive(peer.replyFd);
    if (n < 0) return this.failed(session, -n, 'client');
    if (n === 0) return;
    this.sessions.touch(session, this.now);
    let runStart = 0;
    for (let i = 0; i <= n; i++) {
      const valid = i < n && b.sourceIs(i, session.clientSockaddr);
      if (valid) continue;
      if (i > runStart) this.sendUp(peer, runStart, i - runStart);
      if (i < n) this.handOverStraggler(peer, i);
      runStart = i + 1;
    }
  }

  /**
   * A datagram of another client on a connected reply socket: the kernel looked the socket up
   * while it was still unconnected (between bind() and connect()) but queued the datagram only
   * after the drain that follows connect(); under load, with a burst of new flows, that happens.
   * It went to this socket's address, so it is that client's datagram to the same remote: handed to
   * its own flow like the drained ones, never relayed as this session's client's.
   */
  private handOverStraggler(peer: Peer, i: number): void {
    const b = this.batch;
    if (b.truncated(i)) return this.count('truncated', b.source(i));
    this.bump(N.raceHandovers);
    this.pending.push({ client: b.source(i), destination: peer.remote, data: Buffer.from(b.slot(i)) });
  }

  private sendUp(peer: Peer, from: number, count: number): void {
    const { session } = peer;
    let bytes = 0;
    for (let i = from; i < from + count; i++) bytes += this.batch.lengths[i] ?? 0;
    this.bump(N.datagramsFromClients, count);
    this.bump(N.bytesFromClients, bytes);
    session.datagramsFromClient += count;
    session.bytesFromClient += bytes;
    this.bumpRouted(session, R.datagramsFromClients, R.bytesFromClients, count, bytes);
    if (session.socks) {
      for (let i = from; i < from + count && this.sessions.get(session.key) === session; i++) this.sendToRelay(peer, this.batch.slot(i), this.batch.lengths[i] ?? 0);
      return;
    }
    const sent = this.batch.send(session.upstreamFd, from, count, this.independent ? peer.pinned : null);
    if (sent < 0) this.upstreamSendFailed(session, -sent, count);
    else if (sent < count) this.count('upstream-busy', session.client, count - sent);
  }

  /**
   * Full buffers and oversized datagrams drop the datagram. Other errors end an endpoint-dependent
   * session (its one destination failed); an endpoint-independent session serves other remotes
   * too, so there the datagram is dropped and counted.
   */
  private upstreamSendFailed(session: Session, errno: number, count: number): void {
    const name = errnoName(errno);
    if (this.independent || name === 'EAGAIN' || name === 'ENOBUFS' || name === 'EMSGSIZE') return this.count(errorReasonOf(name, 'upstream'), session.client, count);
    this.failed(session, errno, 'upstream');
  }

  /** Full buffers and oversized datagrams toward the client drop the datagram; other errors end the session. */
  private replySendFailed(session: Session, errno: number, count: number): void {
    const name = errnoName(errno);
    if (name === 'EAGAIN' || name === 'ENOBUFS' || name === 'EMSGSIZE') return this.count(errorReasonOf(name, 'client'), session.client, count);
    this.failed(session, errno, 'client');
  }

  /** A send the uring engine queued in an earlier turn failed (the epoll engine's fail at once). */
  private queuedSendFailed(fd: number, errno: number, count: number): void {
    const owner = this.owners.get(fd);
    if (owner?.kind === 'upstream') this.upstreamSendFailed(owner.session, errno, count);
    else if (owner?.kind === 'reply') this.replySendFailed(owner.peer.session, errno, count);
  }

  // ---- server -> client ----

  private readUpstream(session: Session): void {
    const b = this.batch;
    const n = b.receive(session.upstreamFd);
    if (n < 0) return this.failed(session, -n, 'upstream');
    if (n === 0) return;
    this.sessions.touch(session, this.now);
    let runStart = 0;
    let runPeer: Peer | undefined;
    for (let i = 0; i < n; i++) {
      const peer = this.peerForSource(session, i);
      if (this.sessions.get(session.key) !== session) return; // closed while opening a peer
      if (peer === runPeer) continue;
      if (runPeer) this.deliver(runPeer, runStart, i - runStart);
      if (this.sessions.get(session.key) !== session) return; // closed while delivering
      runPeer = peer;
      runStart = i;
    }
    if (runPeer) this.deliver(runPeer, runStart, n - runStart);
  }

  /** The peer a datagram on the upstream socket comes from, opened on first contact when full cone. */
  private peerForSource(session: Session, i: number): Peer | undefined {
    const b = this.batch;
    if (!this.independent) {
      const only = session.peers.values().next().value;
      if (only && b.sourceIs(i, only.pinned.sockaddr)) return only;
      this.count('foreign-source', b.source(i));
      return undefined;
    }
    const source = b.source(i);
    const known = session.peers.get(endpointKey(source));
    if (known) return known;
    return this.inboundRejected(session, source) ? undefined : this.openPeer(session, source, true);
  }

  /**
   * Full cone: a remote that was never a destination of this session sends to its mapping. It is
   * routed as the flow client -> remote would be (without a name: there is no first datagram of
   * the client's to read one from); a `reject` route drops it, counted, as it would the client's
   * own datagrams to it. Any other route lets it in through this session's mapping: the mapping is
   * what it reached, and the client's answers to it leave the same way.
   */
  private inboundRejected(session: Session, remote: Endpoint): boolean {
    const flow = { protocol: 'udp', source: session.client.address, destination: remote.address, destinationPort: remote.port } as const;
    const first = this.routes.decideUnnamed(flow);
    const decision = first === 'sniff' ? this.routes.decide(flow) : first;
    if (decision.outbound.kind !== 'reject') return false;
    this.bumpRoutedOf(decision, R.rejected, 1);
    this.count('rejected', remote);
    return true;
  }

  private deliver(peer: Peer, from: number, count: number): void {
    const { session } = peer;
    const b = this.batch;
    let bytes = 0;
    for (let i = from; i < from + count; i++) bytes += b.lengths[i] ?? 0;
    this.bump(N.datagramsFromServers, count);
    this.bump(N.bytesFromServers, bytes);
    session.datagramsFromServer += count;
    session.bytesFromServer += bytes;
    this.bumpRouted(session, R.datagramsFromServers, R.bytesFromServers, count, bytes);
    if (peer.replyFd >= 0) {
      const sent = b.send(peer.replyFd, from, count, null);
      if (sent >= 0) {
        if (sent < count) this.count('client-busy', session.client, count - sent);
        return;
      }
      return this.replySendFailed(session, -sent, count);
    }
    const sender = this.raw.get(peer.remote.family);
    if (!sender || !peer.fallback) return this.count('reply-fallback-failed', session.client, count);
    for (let i = from; i < from + count; i++) {
      const sent = sender.send(peer.fallback, b.slot(i), b.lengths[i] ?? 0);
      if (sent < 0) this.count(errorReasonOf(errnoName(-sent), 'client'), session.client);
    }
  }

  // ---- socks5 outbound (socks5-association.ts) ----

  /** The control connection moved: on with the association, or the session fails. */
  private onControl(session: Session, events: number): void {
    const socks = session.socks;
    if (!socks) return;
    const step = socks.onEvents(events);
    if (step.kind === 'wait') return;
    if (step.kind === 'failed') return this.socksFailed(session, step.reason, step.detail);
    if (step.relay.family !== socks.proxy.endpoint.family) return this.socksFailed(session, 'socks5-protocol', `relay ${endpointKey(step.relay)} is not in the proxy's address family`);
    try {
      this.api.connect(session.upstreamFd, step.relay);
    } catch (error) {
      return this.socksFailed(session, 'socks5-connect-failed', error instanceof TproxyError ? String(error.details['errno'] ?? error.message) : String(error));
    }
    this.settingUp.delete(session);
    for (const datagram of socks.takeHeld()) {
      const sent = this.api.sendDatagram(session.upstreamFd, datagram, datagram.length, null);
      if (sent < 0) this.upstreamSendFailed(session, -sent, 1);
      if (this.sessions.get(session.key) !== session) return;
    }
  }

  /** One datagram to the relay behind its SOCKS5 header; held while the association is set up. */
  private sendToRelay(peer: Peer, data: Buffer, length: number): void {
    const { session, socksHeader } = peer;
    if (!session.socks || !socksHeader) return;
    const total = socksHeader.length + length;
    if (session.socks.state !== 'ready') {
      const copy = Buffer.allocUnsafe(total);
      socksHeader.copy(copy, 0);
      data.copy(copy, socksHeader.length, 0, length);
      if (!session.socks.hold(copy)) this.count('socks5-queue-full', session.client);
      return;
    }
    socksHeader.copy(this.wrapped, 0);
    data.copy(this.wrapped, socksHeader.length, 0, length);
    const sent = this.api.sendDatagram(session.upstreamFd, this.wrapped, total, null);
    if (sent < 0) this.upstreamSendFailed(session, -sent, 1);
  }

  /** Datagrams from the relay: each header names its remote, whose reply path sends the payload on. */
  private readRelay(session: Session): void {
    const b = this.batch;
    const n = b.receive(session.upstreamFd);
    if (n < 0) return this.failed(session, -n, 'upstream');
    if (n === 0) return;
    this.sessions.touch(session, this.now);
    for (let i = 0; i < n; i++) {
      if (b.truncated(i)) {
        this.count('truncated', session.client);
        continue;
      }
      const decoded = decodeSocks5UdpDatagram(b.slot(i));
      if (decoded.kind === 'invalid') {
        this.count(decoded.reason === 'fragmented' ? 'socks5-fragmented' : 'socks5-bad-datagram', session.client);
        continue;
      }
      const peer = this.relayPeer(session, decoded.destination);
      if (this.sessions.get(session.key) !== session) return; // closed while opening a peer
      if (!peer) continue;
      const { payload } = decoded;
      this.deliverPayload(peer, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
      if (this.sessions.get(session.key) !== session) return;
    }
  }

  /**
   * The peer a relayed datagram comes from, by the address in its header. Endpoint-dependent: the
   * session's one destination only (a name is taken as the proxy's word for it); full cone: any
   * remote with an address, opened on first contact (a name cannot be a reply socket's source).
   */
  private relayPeer(session: Session, source: Socks5Address): Peer | undefined {
    if (!this.independent) {
      const only = session.peers.values().next().value;
      if (only && (source.family === 'domain' || endpointKey(source) === endpointKey(only.remote))) return only;
      this.count('foreign-source', source.family === 'domain' ? session.client : source);
      return undefined;
    }
    if (source.family === 'domain') {
      this.count('socks5-bad-datagram', session.client);
      return undefined;
    }
    const known = session.peers.get(endpointKey(source));
    if (known) return known;
    return this.inboundRejected(session, source) ? undefined : this.openPeer(session, source, true);
  }

  private deliverPayload(peer: Peer, payload: Buffer): void {
    const { session } = peer;
    const length = payload.length;
    this.bump(N.datagramsFromServers);
    this.bump(N.bytesFromServers, length);
    session.datagramsFromServer++;
    session.bytesFromServer += length;
    this.bumpRouted(session, R.datagramsFromServers, R.bytesFromServers, 1, length);
    if (peer.replyFd >= 0) {
      const sent = this.api.sendDatagram(peer.replyFd, payload, length, null);
      if (sent >= 0) return;
      const name = errnoName(-sent);
      if (name === 'EAGAIN' || name === 'ENOBUFS' || name === 'EMSGSIZE') return this.count(errorReasonOf(name, 'client'), session.client);
      return this.failed(session, -sent, 'client');
    }
    const sender = this.raw.get(peer.remote.family);
    if (!sender || !peer.fallback) return this.count('reply-fallback-failed', session.client);
    const sent = sender.send(peer.fallback, payload, length);
    if (sent < 0) this.count(errorReasonOf(errnoName(-sent), 'client'), session.client);
  }

  /**
   * The association failed: counted by reason and per route and outbound, one log line per
   * outbound and reason per second at most, and the session ends; no other session is touched.
   */
  private socksFailed(session: Session, reason: Socks5FailureReason, detail: string): void {
    this.bump(E[reason]);
    this.bump(session.routeSlot + R.failed);
    this.bump(session.outboundSlot + R.failed);
    const { outbound } = session.decision;
    const key = `${outbound.name}|${reason}`;
    const seen = this.failures.get(key) ?? { lastMs: -Infinity, since: 0 };
    seen.since++;
    this.failures.set(key, seen);
    if (this.now - seen.lastMs >= DROP_EVENT_INTERVAL_MS) {
      const proxy = outbound.kind === 'socks5' ? formatUpstreamProxy(outbound.proxy) : outbound.name;
      this.deps.emit({ type: 'udp.outbound.failed', id: session.id, client: session.client, originalDestination: session.destination, outbound: outbound.name, proxy, reason, detail, failures: seen.since });
      seen.lastMs = this.now;
      seen.since = 0;
    }
    this.close(session, reason);
  }

  // ---- routes ----

  /**
   * A datagram of a flow with no peer yet: route it, then find or open its session and the flow's
   * reply path. Undefined: held (its QUIC ClientHello is not complete), or dropped (rejected, a
   * loop, or no room), counted.
   */
  private openFlow(client: Endpoint, destination: Endpoint, data: Buffer, length: number, slot: number): Peer | undefined {
    if (this.deps.localAddresses().has(destination.address)) {
      this.count('loop', client);
      return undefined;
    }
    const routed = this.route(client, destination, data, length, slot);
    return routed === undefined ? undefined : this.openRouted(client, destination, routed);
  }

  /** A held flow whose sniff timeout passed: routed without a name, its datagrams sent in order. */
  private releaseHeld({ client, destination, held, dscp }: ExpiredHold): void {
    const flow = { protocol: 'udp', source: client.address, destination: destination.address, destinationPort: destination.port } as const;
    const last = held[held.length - 1];
    if (!last) return;
    const peer = this.openRouted(client, destination, { decision: this.routes.decide(flow), dscp, held: held.slice(0, -1) });
    if (peer && this.sessions.get(peer.session.key) === peer.session) this.relayFromClient(peer, last, last.length);
  }

  /**
   * The session and reply path of a routed flow, the datagrams held for it sent first (the one at
   * hand is the caller's). Undefined: dropped (rejected, or no room), counted.
   */
  private openRouted(client: Endpoint, destination: Endpoint, { decision, dscp, held }: Routed): Peer | undefined {
    const { outbound } = decision;
    if (outbound.kind === 'reject') {
      this.bumpRoutedOf(decision, R.rejected, 1 + held.length);
      this.count('rejected', client, 1 + held.length);
      return undefined;
    }
    if (outbound.kind !== 'direct' && outbound.kind !== 'transparent' && outbound.kind !== 'socks5') {
      // The relay refuses such routing at start; a session never leaves through a proxy unseen.
      this.count('session-open-failed', client);
      return undefined;
    }
    const key = this.independent ? `${sessionKey(client, { address: '*', port: 0 })}|${outbound.name}` : sessionKey(client, destination);
    const session = this.sessions.get(key) ?? this.openSession(key, client, destination, decision, dscp);
    if (!session) return undefined;
    const peer = session.peers.get(endpointKey(destination)) ?? this.openPeer(session, destination, false);
    for (const datagram of held) {
      if (!peer || this.sessions.get(session.key) !== session) return undefined; // failed while sending
      this.relayFromClient(peer, datagram, datagram.length);
    }
    return peer;
  }

  /**
   * The route of a flow's datagram. Only when a route could use a name are its datagrams read for
   * a QUIC ClientHello's server name; undefined: held until the rest of that ClientHello comes.
   */
  private route(client: Endpoint, destination: Endpoint, data: Buffer, length: number, slot: number): Routed | undefined {
    const flow = { protocol: 'udp', source: client.address, destination: destination.address, destinationPort: destination.port } as const;
    const key = flowKey(client, destination);
    let step: QuicHoldStep;
    if (this.quic.has(key)) step = this.quic.next(key, data.subarray(0, length));
    else {
      const first = this.routes.decideUnnamed(flow);
      if (first !== 'sniff') return { decision: first, dscp: this.sessionDscp(slot), held: [] };
      this.bump(N.quicSniffs);
      step = this.quic.first(key, client, destination, data.subarray(0, length), this.sessionDscp(slot), this.now);
    }
    if (step.kind === 'held') return undefined;
    if (step.name === undefined) return { decision: this.routes.decide(flow), dscp: step.dscp, held: step.held };
    this.bump(N.quicNames);
    return { decision: this.routes.decide({ ...flow, name: step.name }), dscp: step.dscp, held: step.held };
  }

  private routedSlots(decision: RouteDecision): { readonly route: number; readonly outbound: number } {
    const r = decision.route === undefined ? this.layout.routes.length - 1 : this.layout.routes.indexOf(decision.route);
    return { route: routeSlot(r), outbound: outboundSlot(this.layout, this.layout.outbounds.indexOf(decision.outbound.name)) };
  }

  private bumpRoutedOf(decision: RouteDecision, slot: number, n: number): void {
    const at = this.routedSlots(decision);
    this.bump(at.route + slot, n);
    this.bump(at.outbound + slot, n);
  }

  private bumpRouted(session: Session, datagramsSlot: number, bytesSlot: number, datagrams: number, bytes: number): void {
    this.bump(session.routeSlot + datagramsSlot, datagrams);
    this.bump(session.routeSlot + bytesSlot, bytes);
    this.bump(session.outboundSlot + datagramsSlot, datagrams);
    this.bump(session.outboundSlot + bytesSlot, bytes);
  }

  // ---- sessions and peers ----

  /** The DSCP a new session sends with: the listener's, or with `copy` the opening datagram's. */
  private sessionDscp(slot: number): number | undefined {
    const { dscp } = this.config.headers;
    if (dscp !== 'copy') return dscp;
    return slot >= 0 ? (this.batch.dscp(slot) ?? 0) : 0;
  }

  /** setsockopt options for the sent headers of a session's sockets. */
  private sent(session: { readonly dscp: number | undefined }): { dscp?: number; ttl?: number } {
    const { ttl } = this.config.headers;
    return { ...(session.dscp !== undefined ? { dscp: session.dscp } : {}), ...(ttl !== undefined ? { ttl } : {}) };
  }

  private openSession(key: string, client: Endpoint, destination: Endpoint, decision: RouteDecision, dscp: number | undefined): Session | undefined {
    if (this.sessions.size >= this.config.maxSessions) {
      const oldest = this.sessions.oldest();
      if (oldest) {
        this.bump(N.sessionsEvicted);
        this.close(oldest, 'evicted');
      }
    }
    // The upstream socket now (and a SOCKS5 control connection), the reply socket right after:
    // room for all, or the datagram waits.
    const proxy = decision.outbound.kind === 'socks5' ? decision.outbound.proxy : undefined;
    const held = proxy ? 2 : 1;
    if (!this.takeDescriptor(undefined, held + 1)) {
      this.count('descriptor-limit', client);
      return undefined;
    }
    this.giveBack(); // the reply socket's one, taken again by openPeer
    // Through a proxy the upstream socket talks to its relay, in the proxy's family.
    const family = proxy ? proxy.endpoint.family : destination.family;
    const transparent = decision.outbound.kind === 'transparent';
    let upstreamFd = -1;
    let socks: Socks5Association | undefined;
    try {
      upstreamFd = this.api.open({ family, transport: 'udp', mark: this.config.upstreamMark, transparent, reuseAddress: transparent, receiveBufferBytes: this.config.receiveBufferBytes, ...this.sent({ dscp }) });
      if (proxy) socks = Socks5Association.open(this.api, this.epoll, proxy, { mark: this.config.upstreamMark, ...this.sent({ dscp }), nowMs: this.now });
      else if (transparent) this.api.bind(upstreamFd, client);
      else if (this.independent) this.api.bind(upstreamFd, { family, address: anyAddress(family), port: 0 });
      if (!this.independent && !proxy) this.api.connect(upstreamFd, destination);
      this.batch.watch(upstreamFd);
      if (transparent && !this.independent) this.holdGuard(client);
    } catch (error) {
      if (upstreamFd >= 0) {
        this.batch.forget(upstreamFd);
        this.api.close(upstreamFd);
      }
      if (socks) this.api.close(socks.controlFd);
      this.giveBack(held);
      this.count('session-open-failed', client, 1, error);
      return undefined;
    }
    const slots = this.routedSlots(decision);
    const session: Session = {
      key,
      id: this.nextId++,
      client,
      clientSockaddr: encodeSockaddr(client),
      destination,
      upstreamFd,
      transparent,
      decision,
      routeSlot: slots.route,
      outboundSlot: slots.outbound,
      dscp,
      peers: new Map(),
      socks,
      lastActiveMs: this.now,
      datagramsFromClient: 0,
      datagramsFromServer: 0,
      bytesFromClient: 0,
      bytesFromServer: 0,
    };
    this.sessions.add(session);
    this.owners.set(upstreamFd, { kind: 'upstream', session });
    if (socks) {
      this.owners.set(socks.controlFd, { kind: 'socks-control', session });
      this.settingUp.add(session);
    }
    this.bump(N.sessionsCreated);
    this.bump(N.sessionsActive);
    this.bump(slots.route + R.sessions);
    this.bump(slots.outbound + R.sessions);
    if (this.deps.flowEvents()) {
      const route = decision.route === undefined ? {} : { route: decision.route };
      this.deps.emit({ type: 'udp.session.open', id: session.id, client, originalDestination: destination, upstreamLocal: this.api.localEndpoint(upstreamFd), mapping: this.config.mapping, ...route, outbound: decision.outbound.name });
    }
    return session;
  }

  /**
   * The reply path from `remote` to the session's client. `inbound`: the remote spoke first (full
   * cone). Returns undefined when it cannot exist (the datagram is dropped and counted).
   */
  private openPeer(session: Session, remote: Endpoint, inbound: boolean): Peer | undefined {
    if (session.peers.size >= (this.independent ? this.config.maxPeersPerSession : 1)) {
      this.count('peer-limit', remote);
      return undefined;
    }
    const { client } = session;
    if (!this.takeDescriptor(session)) {
      this.count('descriptor-limit', remote);
      if (session.peers.size === 0) this.close(session, 'descriptor-limit');
      return undefined;
    }
    let replyFd = -1;
    let fallback: UdpFallbackRoute | undefined;
    try {
      replyFd = this.api.open({ family: remote.family, transport: 'udp', transparent: true, reuseAddress: true, receiveBufferBytes: this.config.receiveBufferBytes, ...this.sent(session) });
      try {
        this.api.bind(replyFd, remote);
      } catch (error) {
        if (!(error instanceof TproxyError) || error.code !== 'ERR_ADDRESS_IN_USE') throw error;
        this.api.close(replyFd);
        this.giveBack();
        replyFd = -1;
        fallback = this.openFallback(session, remote);
        if (!fallback) return undefined;
      }
      if (replyFd >= 0) {
        this.deps.testSeam?.afterReplyBind();
        this.api.connect(replyFd, client);
        this.batch.watch(replyFd);
      }
    } catch (error) {
      if (replyFd >= 0) {
        this.batch.forget(replyFd);
        this.api.close(replyFd);
      }
      this.giveBack(); // the open failed, or the socket was closed just now
      this.count('session-open-failed', client, 1, error);
      if (session.peers.size === 0) this.close(session, 'reply-path-failed');
      return undefined;
    }
    const socksHeader = session.socks ? socks5Header(remote) : undefined;
    const peer: Peer = { session, remote, pinned: this.batch.pin(remote), replyFd, fallback, socksHeader };
    session.peers.set(endpointKey(remote), peer);
    this.flows.set(flowKey(client, remote), peer);
    this.bump(N.peersCreated);
    if (inbound) this.bump(N.peersInbound);
    if (replyFd >= 0) {
      this.owners.set(replyFd, { kind: 'reply', peer });
      this.drain(peer);
    }
    return peer;
  }

  /** The guard of `client`'s endpoint: opened by its first session, shared by the others. */
  private holdGuard(client: Endpoint): void {
    const key = endpointKey(client);
    const held = this.guards.get(key);
    if (held) {
      held.sessions++;
      return;
    }
    if (!this.takeDescriptor(undefined)) throw new TproxyError('ERR_RESOURCE_EXHAUSTED', 'no descriptor left in the budget for the endpoint guard socket', { errno: 'EMFILE' });
    let fd = -1;
    try {
      fd = this.api.open({ family: client.family, transport: 'udp', transparent: true, reuseAddress: true, receiveBufferBytes: GUARD_RECEIVE_BYTES });
      this.api.bind(fd, client);
      this.batch.watch(fd);
    } catch (error) {
      if (fd >= 0) {
        this.batch.forget(fd);
        this.api.close(fd);
      }
      this.giveBack();
      throw error;
    }
    const guard: Guard = { fd, key, sessions: 1 };
    this.guards.set(key, guard);
    this.owners.set(fd, { kind: 'guard', guard });
  }

  private releaseGuard(client: Endpoint): void {
    const guard = this.guards.get(endpointKey(client));
    if (!guard || --guard.sessions > 0) return;
    this.guards.delete(guard.key);
    this.owners.delete(guard.fd);
    this.batch.forget(guard.fd);
    this.api.close(guard.fd);
    this.giveBack();
  }

  /** Datagrams to a client's endpoint from anyone but its destinations: dropped, counted. */
  private readGuard(guard: Guard): void {
    const n = this.batch.receive(guard.fd);
    for (let i = 0; i < n; i++) this.count('unsolicited', this.batch.source(i));
  }

  /** EADDRINUSE on the reply address: send replies through the raw socket of the family. */
  private openFallback(session: Session, remote: Endpoint): UdpFallbackRoute | undefined {
    let sender = this.raw.get(remote.family);
    if (!sender) {
      try {
        if (!this.takeDescriptor(session)) throw new TproxyError('ERR_SYSCALL', 'no descriptor left in the budget for the raw reply socket', { errno: 'EMFILE' });
        try {
          sender = this.api.rawUdpSender(remote.family);
        } catch (error) {
          this.giveBack();
          throw error;
        }
        this.raw.set(remote.family, sender);
      } catch (error) {
        this.count('reply-fallback-failed', session.client, 1, error);
        if (session.peers.size === 0) this.close(session, 'reply-path-failed');
        return undefined;
      }
    }
    this.bump(N.replyFallbacks);
    this.deps.emit({ type: 'udp.reply.fallback', id: session.id, remote, replyTo: session.client, reason: 'EADDRINUSE' });
    return udpFallbackRoute(remote, session.client);
  }

  /** Datagrams that reached the new reply socket between bind() and connect(), each to its own flow. */
  private drain(peer: Peer): void {
    for (let i = 0; i < MAX_DRAIN; i++) {
      let d;
      try {
        d = this.drainRx.receive(peer.replyFd);
      } catch {
        return; // an error on the fresh socket shows up again on the next read
      }
      if (!d) return;
      if (d.truncated) continue;
      const data = Buffer.from(this.drainRx.data.subarray(0, d.length));
      if (endpointKey(d.source) !== endpointKey(peer.session.client)) this.bump(N.raceHandovers);
      this.pending.push({ client: d.source, destination: peer.remote, data });
    }
  }

  /** Relay the drained datagrams, after the one that opened the socket. */
  private handOver(): void {
    for (let i = 0; i < MAX_DRAIN * 4 && this.pending.length > 0; i++) {
      const p = this.pending.shift();
      if (p) this.fromClient(p.client, p.destination, p.data, p.data.length);
    }
    if (this.pending.length > 0) this.count('other', undefined, this.pending.length);
    this.pending.length = 0;
  }

  /** Whether a datagram waits on the session's upstream socket or one of its reply sockets. */
  private hasQueued(session: Session): boolean {
    if (this.api.hasQueuedDatagram(session.upstreamFd)) return true;
    for (const peer of session.peers.values()) if (peer.replyFd >= 0 && this.api.hasQueuedDatagram(peer.replyFd)) return true;
    return false;
  }

  /** A send or receive failed with errno: the session ends, counted by reason. */
  private failed(session: Session, errno: number, toward: 'upstream' | 'client'): void {
    const name = errnoName(errno);
    this.count(errorReasonOf(name, toward), toward === 'upstream' ? session.destination : session.client);
    this.close(session, name);
  }

  /**
   * Take `n` descriptors from the budget before opening sockets. At the budget the least recently
   * active sessions of this relay (never `keep`) are evicted to make room: a flood of new flows
   * then pushes out the flood's own idle sessions while active flows stay, where refusing would
   * lock every new flow out until the flood's sessions expire. False (refused, counted by the
   * budget) when nothing is left to evict.
   */
  private takeDescriptor(keep: Session | undefined, n = 1): boolean {
    const { budget } = this.deps;
    for (let i = 0; i < MAX_EVICTIONS_PER_DESCRIPTOR * n && budget.available('udp') < n; i++) {
      const victim = this.sessions.oldest(keep);
      if (!victim) break;
      this.bump(N.sessionsEvicted);
      this.bump(N.sessionsEvictedForDescriptors);
      this.close(victim, 'evicted');
    }
    return budget.acquire('udp', n);
  }

  private giveBack(n = 1): void {
    if (n > 0) this.deps.budget.release('udp', n);
  }

  private close(session: Session, reason: string): void {
    if (this.sessions.get(session.key) !== session) return;
    this.sessions.delete(session);
    for (const peer of session.peers.values()) this.flows.delete(flowKey(session.client, peer.remote));
    const fds = [session.upstreamFd, ...(session.socks ? [session.socks.controlFd] : []), ...[...session.peers.values()].map((p) => p.replyFd).filter((fd) => fd >= 0)];
    this.settingUp.delete(session);
    for (const fd of fds) {
      this.owners.delete(fd);
      this.batch.forget(fd);
      try {
        this.api.close(fd);
      } catch {
        // already closed
      }
    }
    this.giveBack(fds.length);
    if (session.transparent && !this.independent) this.releaseGuard(session.client);
    this.bump(N.sessionsActive, -1);
    this.bump(N.sessionsClosed);
    if (this.deps.flowEvents()) this.deps.emit({
      type: 'udp.session.close',
      id: session.id,
      client: session.client,
      originalDestination: session.destination,
      datagramsFromClient: session.datagramsFromClient,
      datagramsFromServer: session.datagramsFromServer,
      bytesFromClient: session.bytesFromClient,
      bytesFromServer: session.bytesFromServer,
      reason,
    });
  }
}

/** RSV(2) FRAG(1) and the address of `remote`: the header of every datagram to it through a SOCKS5 relay. */
function socks5Header(remote: Endpoint): Buffer {
  return Buffer.concat([Buffer.of(0, 0, 0), encodeSocks5Address(remote)]);
}

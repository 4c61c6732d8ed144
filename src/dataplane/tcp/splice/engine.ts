/**
 * The splice engine: TCP relaying whose bytes never enter JavaScript. Runs in its own thread
 * (thread.ts): an epoll loop (koffi) accepts on the transparent listeners, connects upstream
 * without blocking, and moves bytes socket -> pipe -> socket with splice(2) (pump.ts, with pipes
 * from pipe-pool.ts). JavaScript runs per event, not per byte.
 *
 * This file holds accepting, sniffing, the upstream connect and proxy handshake, and closing; the
 * byte pump, the pipe pool, epoll interest, timers and the graceful stop have their own files, and
 * per-flow admission (refusal, route decision, upstream socket, accounting) is ../admission.ts,
 * shared with the uring engine.
 * Accepting pauses at the connection cap or on EMFILE by taking the listener out of the epoll
 * set: the kernel backlog holds new connections meanwhile.
 *
 * Reset on crash: every relayed socket has SO_LINGER {1, 0} while its side of the flow is open
 * (accepted sockets inherit it from the listener, upstream sockets get it when opened), and loses
 * it when the FIN toward that peer is sent. A graceful end stays a FIN; a worker killed mid-flow
 * resets both peers, since the kernel closes its sockets with the linger in force.
 *
 * Sent headers: the listeners carry the fixed DSCP and TTL (accepted sockets inherit them), each
 * upstream socket gets them before its SYN; with `dscp: copy` each flow's two sockets get the DSCP
 * of its SYN (TCP_SAVED_SYN).
 *
 * Socket calls: typed and throwing through SocketApi (sys/socket.ts) off the per-event path; on it
 * (accept4, getsockname, recv/send of sniffing and handshakes, splice, shutdown, close) the
 * injected Libc directly, reading errno numbers: no exception or allocation per call.
 */
import { TproxyError, errnoOf } from '../../../core/errors.js';
import { errnoName } from '../../../core/errno.js';
import * as C from '../../../core/net/constants.js';
import { decodeSockaddr, SOCKADDR_STORAGE_SIZE, type Endpoint } from '../../../core/net/sockaddr.js';
import { createHandshake, type UpstreamHandshake } from '../../../core/upstream/handshake.js';
import type { RouteDecision } from '../../../core/route/table.js';
import { loadLibc, type Libc } from '../../../sys/libc.js';
import { SocketApi } from '../../../sys/socket.js';
import { FlowAdmission } from '../admission.js';
import { increment, type TcpCounters } from '../counters.js';
import type { TcpFlowSnapshot } from '../flows.js';
import { proxyHeaderFor } from '../routing.js';
import { MAX_STREAM_SNIFF_BYTES, sniffStream } from '../../../core/sniff/stream.js';
import { sharedPipes } from '../capacity.js';
import { EndpointCache } from './endpoint-cache.js';
import { EngineEpoll, waitBefore } from './engine-epoll.js';
import { FlowPump, type PairEnd } from './flow-pump.js';
import { CONNECTING, connectOutcome, FlowTable, type Expiry, type FlowSocket } from './flow-table.js';
import { NOT_WATCHED, updateInterest } from './interest.js';
import { PipePool, resizeRefusedMessage } from './pipe-pool.js';
import type { FromEngine, SpliceEngineConfig, ToEngine } from './protocol.js';
import { newDirection, type Direction } from './pump.js';
import { GracefulStop } from './stop.js';
import { duePrefix, engineClock, EngineTimers, ReportedCounters, turnWait } from './timers.js';

const MAX_EVENTS = 512;
const ACCEPT_BATCH = 64;

interface Flow {
  readonly id: number;
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly cfd: number;
  readonly ufd: number;
  /** The route and outbound the flow took at its start; a reload does not change them. */
  readonly decision: RouteDecision;
  connected: boolean;
  /** Set while an upstream proxy's handshake runs (between its TCP connect and the tunnel). */
  handshake: UpstreamHandshake | undefined;
  closed: boolean;
  readonly up: Direction; // client -> upstream
  readonly down: Direction; // upstream -> client
  readonly started: number;
  readonly connectDeadline: number;
  lastActive: number;
  /** Current epoll interest per socket (NOT_WATCHED: not registered). */
  cInterest: number;
  uInterest: number;
}

type ListenerOwner = { readonly kind: 'listener'; readonly fd: number; readonly family: C.Family; readonly port: number };

/** An accepted connection whose first bytes are being peeked at for a name, before its route is known. */
interface Sniffing {
  readonly id: number;
  readonly listener: ListenerOwner;
  readonly cfd: number;
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly deadline: number;
}

type Owner = ListenerOwner | FlowSocket<Flow> | { readonly kind: 'sniffing'; readonly sniff: Sniffing };

export class SpliceEngine {
  private readonly admission: FlowAdmission;
  private readonly counters: TcpCounters;
  private readonly libc: Libc;
  private readonly api: SocketApi;
  private readonly loop: EngineEpoll;
  private readonly epoll: EngineEpoll['epoll'];
  readonly wakeFd: number;
  /** The owner thread posted a message (the wake eventfd fired): return to the event loop to take it. */
  woken = false;
  private readonly addr = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
  private readonly addrLen = Buffer.alloc(4);
  /** Handshake bytes from an upstream proxy, peeked then read: replies are far smaller than this. */
  private readonly peek = Buffer.alloc(4096);
  /** The accepted socket's local address: the original destination, as the kernel wrote it. */
  private readonly local = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
  private readonly localLen = Buffer.alloc(4);
  /** Shared by the flows with bytes in flight; a direction that finds none waits in its line. */
  private readonly pipes: PipePool<Flow>;
  private readonly pairs: FlowPump<Flow>;
  private readonly table: FlowTable<Flow, ListenerOwner | { readonly kind: 'sniffing'; readonly sniff: Sniffing }>;
  private readonly owners: Map<number, Owner>;
  private readonly flows: Set<Flow>;
  /** Flows waiting for their upstream connect, in accept order (so in deadline order). */
  private readonly connecting: Set<Flow>;
  private readonly listeners: ListenerOwner[] = [];
  private listening = true;
  private acceptPaused = false;
  private resumeAt = 0;
  private readonly timers: EngineTimers;
  private readonly stop = new GracefulStop();
  private sniffTimeoutMs: number;
  /** Connections waiting for their name, in accept order (so in deadline order). */
  private readonly sniffing = new Set<Sniffing>();
  /** The first bytes of a client, peeked (never read) for its name. */
  private readonly sniffBytes = Buffer.alloc(MAX_STREAM_SNIFF_BYTES);
  /** Address strings and destinations shared by the flows (kept for each flow's life). */
  private readonly endpoints = new EndpointCache();

  constructor(
    private readonly config: SpliceEngineConfig,
    private readonly post: (message: FromEngine) => void,
    libc: Libc = loadLibc(),
    /** The clock of deadlines, timeouts, ages and durations (ms). */
    private readonly now: () => number = engineClock(),
  ) {
    this.libc = libc;
    this.api = new SocketApi(libc);
    this.admission = new FlowAdmission(config, this.api, now);
    this.counters = this.admission.counters;
    this.pipes = new PipePool<Flow>(libc, config.pipeBytes, config.maxPipes ?? sharedPipes('splice', config.maxConnections));
    this.pipes.onResizeRefused = (errno, bytes) => {
      const code = errnoName(errno);
      this.admission.emit({ type: 'error', code, message: resizeRefusedMessage('tcp splice engine', code, bytes, 'tproxy_tcp_pipe_resizes_refused_total') });
    };
    this.timers = new EngineTimers(config.idleTimeoutMs, config.countersIntervalMs);
    this.sniffTimeoutMs = config.sniffTimeoutMs;
    this.loop = new EngineEpoll(libc, this.api, MAX_EVENTS);
    this.epoll = this.loop.epoll;
    this.wakeFd = this.loop.wakeFd;
    this.pairs = new FlowPump(libc, this.api, this.pipes, this.epoll, config.pipeBytes, now, 'upstream');
    this.table = new FlowTable(this.epoll, this.pairs);
    ({ owners: this.owners, flows: this.flows, connecting: this.connecting } = this.table);
    for (const l of config.listeners) {
      this.api.setInt(l.fd, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
      const owner: ListenerOwner = { kind: 'listener', fd: l.fd, family: l.family, port: l.port };
      this.listeners.push(owner);
      this.owners.set(l.fd, owner);
      this.epoll.add(l.fd, C.EPOLLIN);
    }
  }

  private errno(): string {
    return errnoName(this.libc.errno());
  }

  handle(message: ToEngine): void {
    if (message.kind === 'local-addresses') this.admission.localAddresses = new Set(message.addresses);
    else if (message.kind === 'snapshot') this.post({ kind: 'snapshot', requestId: message.requestId, counters: this.snapshot(), flows: this.busiest(message.limit) });
    else if (message.kind === 'routing') {
      this.admission.reroute(message.routing);
      this.sniffTimeoutMs = message.sniffTimeoutMs;
      this.post({ kind: 'routing', requestId: message.requestId });
    }
    else if (message.kind === 'close-flow') this.post({ kind: 'close-flow', requestId: message.requestId, closed: this.closeById(message.id, message.reason) });
    else this.beginStop(message.graceMs);
  }

  /** The busiest flows by bytes both ways (bytes read into the pipes so far). */
  busiest(limit: number): TcpFlowSnapshot[] {
    return this.admission.busiest(this.flows, limit);
  }

  /**
   * One loop turn: wait for events (up to waitMs; up to IDLE_WAIT_MAX_MS when nothing is timed and
   * the owner has the counters as they are: an idle engine wakes once a second), handle them, run timers.
   * False once stopped.
   */
  turn(waitMs: number): boolean {
    // A sniff deadline due sooner than waitMs shortens the wait (flows are not delayed past it).
    const firstSniff = this.sniffing.values().next().value;
    if (this.loop.dispatch(waitBefore(waitMs, firstSniff, this.now, () => turnWait(waitMs, this)), this.onReady)) this.woken = true;
    const now = this.now();
    if (firstSniff) this.expireSniffs(now);
    if (this.timers.scanDue(now)) this.scan(now);
    this.pairs.wakeWaiters(this.config.maxConnections, (flow, end) => this.ended(flow, end));
    const events = this.admission.takeEvents();
    if (events) this.post({ kind: 'events', events });
    this.reported.postWhenDue(this.timers.countersDue(now), () => this.snapshot(), (counters) => this.post({ kind: 'counters', counters }), this.timed);
    return !this.finishStopIfDone(now);
  }

  private readonly reported = new ReportedCounters();

  private readonly onReady = (fd: number, events: number): void => {
    const owner = this.owners.get(fd);
    if (!owner) return;
    if (owner.kind === 'listener') this.acceptFrom(owner);
    else if (owner.kind === 'sniffing') this.onSniffBytes(owner.sniff, events);
    else if (!owner.flow.closed) this.onSocket(owner.flow, owner.kind, events);
  };

  /** Something of the engine's own is due later: flows (idle timeout, bytes), connects, sniffs, an accept retry, a stop. */
  get timed(): boolean {
    return this.flows.size > 0 || this.connecting.size > 0 || this.sniffing.size > 0 || this.acceptPaused || this.stop.stopping;
  }

  /** The owner got the counters as they are now (only asked while nothing is timed, so the snapshot is small). */
  get countersReported(): boolean {
    return this.reported.current(this.snapshot());
  }

  private snapshot(): TcpCounters {
    return this.admission.snapshot(this.flows, this.flows.size, this.pipes);
  }

  // ---- accepting ------------------------------------------------------------------------------

  private setAccepting(on: boolean): void {
    if (!this.listening || on === !this.acceptPaused) return;
    for (const { fd } of this.listeners) {
      if (on) this.epoll.add(fd, C.EPOLLIN);
      else this.epoll.remove(fd);
    }
    this.acceptPaused = !on;
    if (!on) this.counters.acceptPauses++;
  }

  private acceptFrom(listener: ListenerOwner): void {
    for (let i = 0; i < ACCEPT_BATCH && !this.acceptPaused; i++) {
      this.addrLen.writeUInt32LE(this.addr.length, 0);
      const cfd = this.libc.accept4(listener.fd, this.addr, this.addrLen, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC);
      if (cfd < 0) {
        const errno = this.libc.errno();
        if (errno === C.EAGAIN || errno === C.EINTR) return;
        if (errno === C.EMFILE || errno === C.ENFILE) {
          this.descriptorsExhausted(errnoName(errno));
          return;
        }
        if (errno !== C.ECONNABORTED) this.admission.emit({ type: 'error', code: errnoName(errno), message: `tcp accept: ${errnoName(errno)}` });
        continue;
      }
      const client = this.endpoints.client(decodeSockaddr(this.addr, this.addrLen.readUInt32LE(0)));
      this.localLen.writeUInt32LE(this.local.length, 0);
      if (this.libc.getsockname(cfd, this.local, this.localLen) !== 0) {
        this.api.resetClose(cfd); // gone already (ENOTCONN is not expected on an accepted socket)
        continue;
      }
      // decodeSockaddr already gives canonical text, and V6ONLY listeners see no IPv4-mapped peers.
      this.onAccepted(listener, cfd, client, this.endpoints.destination(decodeSockaddr(this.local, this.localLen.readUInt32LE(0))));
    }
  }

  /** Out of descriptors: counted, and accepting pauses until DESCRIPTOR_RETRY_MS from now. */
  private descriptorsExhausted(errno: string): void {
    increment(this.counters.connectErrors, errno);
    this.setAccepting(false);
    this.resumeAt = this.now() + C.DESCRIPTOR_RETRY_MS;
  }

  private onAccepted(listener: ListenerOwner, cfd: number, client: Endpoint, destination: Endpoint): void {
    const id = this.admission.admit(listener.port, client, destination, this.flows.size + this.sniffing.size);
    if (id === undefined) {
      this.api.resetClose(cfd);
      return;
    }
    const first = this.admission.firstDecision(client, destination);
    if (first !== 'sniff') {
      this.startFlow(listener, id, cfd, client, destination, first, undefined, true);
      return;
    }
    // Its name could change its route: peek at its first bytes (epoll says when they come).
    const sniff: Sniffing = { id, listener, cfd, client, destination, deadline: this.now() + this.sniffTimeoutMs };
    this.sniffing.add(sniff);
    this.owners.set(cfd, { kind: 'sniffing', sniff });
    // Edge-triggered: a prefix that needs more bytes stays in the socket, and level-triggered epoll
    // would report it on every turn until the sniff timeout (a spinning loop).
    this.epoll.add(cfd, C.EPOLLIN | C.EPOLLRDHUP | C.EPOLLET);
    if (this.flowsAtCap()) this.setAccepting(false);
  }

  // ---- sniffing -------------------------------------------------------------------------------
  // MSG_PEEK only: every byte stays in the client's socket for the relay. sniffStream gives a
  // final answer by MAX_STREAM_SNIFF_BYTES, so the buffer never fills without one. The socket is
  // watched edge-triggered, so a prefix that needs more is looked at again only when more arrives.

  private onSniffBytes(sniff: Sniffing, events: number): void {
    const n = this.libc.recv(sniff.cfd, this.sniffBytes, this.sniffBytes.length, C.MSG_PEEK | C.MSG_DONTWAIT);
    if (n < 0) {
      const errno = this.libc.errno();
      if (errno === C.EAGAIN || errno === C.EINTR) return;
      this.endSniff(sniff);
      this.counters.accepted++;
      increment(this.counters.closed, `client-${errnoName(errno)}`);
      this.api.resetClose(sniff.cfd);
      return;
    }
    if (n === 0) {
      this.finishSniff(sniff, 'closed', undefined);
      return;
    }
    const result = sniffStream(this.sniffBytes.subarray(0, n));
    if (result.kind === 'name') this.finishSniff(sniff, result.protocol, result.name);
    else if (result.kind === 'none') this.finishSniff(sniff, 'none', undefined);
    // 'more' with the client's FIN already here: no more bytes will come.
    else if (events & (C.EPOLLRDHUP | C.EPOLLHUP)) this.finishSniff(sniff, 'closed', undefined);
  }

  private expireSniffs(now: number): void {
    for (const sniff of duePrefix(this.sniffing, now, (s) => s.deadline)) this.finishSniff(sniff, 'timeout', undefined);
  }

  private endSniff(sniff: Sniffing): void {
    this.sniffing.delete(sniff);
    this.owners.delete(sniff.cfd);
    this.epoll.remove(sniff.cfd);
  }

  private finishSniff(sniff: Sniffing, outcome: string, name: string | undefined): void {
    this.endSniff(sniff);
    increment(this.counters.sniffs, outcome);
    const decision = this.admission.decide(sniff.client, sniff.destination, name);
    this.startFlow(sniff.listener, sniff.id, sniff.cfd, sniff.client, sniff.destination, decision, name, false);
  }

  private flowsAtCap(): boolean {
    return this.flows.size + this.sniffing.size >= this.config.maxConnections;
  }

  /**
   * The flow takes its route's outbound. `fresh`: called from the accept itself, so this.local
   * still holds the destination's sockaddr as the kernel gave it.
   */
  private startFlow(listener: ListenerOwner, id: number, cfd: number, client: Endpoint, destination: Endpoint, decision: RouteDecision, name: string | undefined, fresh: boolean): void {
    if (!this.admission.routed(id, client, destination, decision, name)) {
      this.api.resetClose(cfd);
      return;
    }
    const outbound = decision.outbound;
    let ufd: number;
    try {
      ufd = this.admission.openUpstream(cfd, listener.family, client, outbound);
      if (outbound.kind === 'socks5' || outbound.kind === 'http') this.api.connect(ufd, outbound.proxy.endpoint);
      else if (!fresh) this.api.connect(ufd, destination);
      // Straight from getsockname's bytes (this.local): no sockaddr to encode again.
      else if (this.libc.connect(ufd, this.local, this.localLen.readUInt32LE(0)) !== 0 && this.libc.errno() !== C.EINPROGRESS) {
        const errno = this.errno();
        this.libc.close(ufd);
        throw new TproxyError('ERR_SYSCALL', `connect: ${errno}`, { errno });
      }
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === 'EMFILE' || errno === 'ENFILE') this.descriptorsExhausted(errno);
      else increment(this.counters.connectErrors, errno);
      this.api.resetClose(cfd);
      return;
    }
    const now = this.now();
    const flow: Flow = {
      id,
      client,
      destination,
      cfd,
      ufd,
      decision,
      connected: false,
      handshake: undefined,
      closed: false,
      up: newDirection(),
      down: newDirection(),
      started: now,
      connectDeadline: now + this.config.connectTimeoutMs,
      lastActive: now,
      cInterest: NOT_WATCHED,
      uInterest: NOT_WATCHED,
    };
    this.counters.accepted++;
    this.table.add(flow);
    if (this.flowsAtCap()) this.setAccepting(false);
  }

  // ---- flows ----------------------------------------------------------------------------------

  private onSocket(flow: Flow, side: 'client' | 'upstream', events: number): void {
    if (!flow.connected) {
      if (side !== 'upstream') return;
      if (flow.handshake) {
        this.onHandshakeBytes(flow, flow.handshake);
        return;
      }
      const outcome = connectOutcome(this.api, flow.ufd, events);
      if (outcome === CONNECTING) return;
      if (outcome !== 0) {
        const errno = errnoName(outcome);
        increment(this.counters.connectErrors, errno);
        this.close(flow, errno);
        return;
      }
      const outbound = flow.decision.outbound;
      if (outbound.kind === 'socks5' || outbound.kind === 'http') this.startHandshake(flow, createHandshake(outbound.proxy, flow.destination));
      else this.onConnected(flow);
      return;
    }
    const end = this.pairs.onEvents(flow, side, events);
    if (end) this.ended(flow, end);
  }

  // ---- upstream proxy handshake ---------------------------------------------------------------
  // The connect deadline covers it: the flow stays in `connecting` until the tunnel is open, and
  // the client is not read meanwhile (its bytes wait in its socket).

  private startHandshake(flow: Flow, handshake: UpstreamHandshake): void {
    flow.handshake = handshake;
    if (!this.sendAll(flow, handshake.first)) return;
    // Edge-triggered, as sniffing: a reply that came in part is peeked again only when more comes.
    this.interest(flow, 'upstream', C.EPOLLIN | C.EPOLLRDHUP | C.EPOLLET);
  }

  /** Proxy requests are small and the socket's buffer empty: a short send is a broken proxy. */
  private sendAll(flow: Flow, bytes: Uint8Array): boolean {
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.libc.send(flow.ufd, data, data.length, C.MSG_DONTWAIT) === data.length) return true;
    this.handshakeFailed(flow, 'proxy-send', this.errno());
    return false;
  }

  /** Peek at what the proxy sent and read exactly the bytes its handshake claims. */
  private onHandshakeBytes(flow: Flow, handshake: UpstreamHandshake): void {
    const n = this.libc.recv(flow.ufd, this.peek, this.peek.length, C.MSG_PEEK | C.MSG_DONTWAIT);
    if (n < 0) {
      const errno = this.libc.errno();
      if (errno !== C.EAGAIN && errno !== C.EINTR) this.handshakeFailed(flow, `proxy-${errnoName(errno)}`, errnoName(errno));
      return;
    }
    if (n === 0) {
      this.handshakeFailed(flow, 'proxy-closed', 'ECONNRESET');
      return;
    }
    const step = handshake.offer(this.peek.subarray(0, n));
    if (step.take > 0) this.libc.recv(flow.ufd, this.peek, step.take, C.MSG_DONTWAIT);
    switch (step.kind) {
      case 'more':
        return;
      case 'send':
        this.sendAll(flow, step.send);
        return;
      case 'done':
        flow.handshake = undefined;
        this.onConnected(flow);
        return;
      case 'failed':
        this.handshakeFailed(flow, step.reason, step.errno);
    }
  }

  /** Counted with connect errors (by errno when the refusal has one), then the client is reset. */
  private handshakeFailed(flow: Flow, reason: string, errno: string | undefined): void {
    increment(this.counters.connectErrors, errno ?? reason);
    this.close(flow, reason);
  }

  private onConnected(flow: Flow): void {
    // The socket's send buffer is empty: the header goes whole or the next hop is broken.
    const header = proxyHeaderFor(flow.decision.outbound, flow.client, flow.destination);
    if (header && !this.sendAll(flow, header)) return;
    this.table.connected(flow);
    this.admission.connected(flow.id, flow.cfd, flow.ufd);
    // The client's bytes (mostly here already) go now; the upstream's reply cannot have come yet
    // (a server that speaks first is reported by epoll): no splice only to hear EAGAIN.
    const end = this.pairs.all(flow, true, false);
    if (end) this.ended(flow, end);
  }

  /** The pair ended: a pipe that could not be had counts with connect errors. */
  private ended(flow: Flow, end: PairEnd): void {
    if (end.pipeErrno !== undefined) increment(this.counters.connectErrors, end.pipeErrno);
    this.close(flow, end.reason);
  }

  private interest(flow: Flow, side: 'client' | 'upstream', events: number): void {
    if (side === 'client') flow.cInterest = updateInterest(this.epoll, flow.cfd, flow.cInterest, events);
    else flow.uInterest = updateInterest(this.epoll, flow.ufd, flow.uInterest, events);
  }

  /** An operator closes flow `id`: reset both peers. False when it is not in progress. */
  private closeById(id: number, reason: string): boolean {
    for (const flow of this.flows) {
      if (flow.id !== id) continue;
      this.close(flow, reason);
      return true;
    }
    return false;
  }

  private close(flow: Flow, reason: string): void {
    if (!this.table.close(flow, reason)) return;
    this.admission.closed(flow, reason, this.flows.size);
    // Resume below the cap, not below a lower mark: waiting connections must not sit in the
    // backlog while there is room (with a gap, flows that wait on each other could never finish).
    if (this.acceptPaused && this.resumeAt === 0 && !this.flowsAtCap()) this.setAccepting(true);
  }

  private scan(now: number): void {
    if (this.acceptPaused && this.resumeAt !== 0 && now >= this.resumeAt) {
      this.resumeAt = 0;
      if (!this.flowsAtCap()) this.setAccepting(true);
    }
    this.table.expire(now, this.timers.idleDue(now) ? this.config.idleTimeoutMs : undefined, this.expired);
  }

  private readonly expired = (flow: Flow, why: Expiry): void => {
    if (why === 'connect-timeout') increment(this.counters.connectErrors, why);
    this.close(flow, why);
  };

  // ---- stopping -------------------------------------------------------------------------------

  private beginStop(graceMs: number): void {
    if (!this.stop.begin(this.now(), graceMs, this.flows.size)) return;
    this.pipes.draining = true;
    if (!this.acceptPaused) this.setAccepting(false);
    this.listening = false;
    for (const { fd } of this.listeners) this.libc.close(fd);
    // Connections still waiting for their name never became flows: reset them.
    for (const sniff of [...this.sniffing]) {
      this.endSniff(sniff);
      increment(this.counters.closed, 'stopped');
      this.api.resetClose(sniff.cfd);
    }
  }

  private finishStopIfDone(now: number): boolean {
    if (!this.stop.due(now, this.flows.size)) return false;
    const forced = this.flows.size;
    for (const flow of [...this.flows]) this.close(flow, 'stopped');
    const events = this.admission.takeEvents();
    if (events) this.post({ kind: 'events', events });
    this.post({ kind: 'stopped', report: this.stop.report(forced), counters: this.snapshot() });
    this.pipes.closeIdle();
    this.epoll.close();
    this.libc.close(this.wakeFd);
    return true;
  }

  get stopping(): boolean {
    return this.stop.stopping;
  }
}

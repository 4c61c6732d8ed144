/**
 * An mmproxy TCP listener on the splice engine: one epoll loop per engine thread (several per
 * entry, all watching the entry's listening sockets with EPOLLEXCLUSIVE), whose relayed bytes never
 * enter JavaScript. What it does is the stream path's (tcp-relay.ts), step for step:
 *
 * - accept; a source outside allowedSources, or no room in the descriptor budget, is reset;
 * - the PROXY header is read with one recv (no peek, then a read of its length): what came
 *   after it in that read (the client's first bytes: a balancer sends them with the header) is
 *   kept and written to the backend first once it is connected (splice-early.ts), so no byte is
 *   lost and the first request costs one call instead of two splices. A header still incomplete
 *   is kept and waits for the next bytes (EPOLLET: the socket was read empty), bounded by the
 *   header timeout and the size bound;
 * - LOCAL: relayed to the health target from this host, or closed cleanly after the header (the
 *   balancer's side read to its end, cut at the header timeout);
 * - PROXY: the backend (fixed per family, or the header's destination) is connected without
 *   blocking from the client's address and port (IP_TRANSPARENT, the upstream mark;
 *   the client's port taken here: another port), bounded by the connect timeout; then both ways
 *   small messages are copied and bulk goes socket -> pipe -> socket (../tcp/splice/pump.ts, the
 *   thread's shared pipes), FINs passed on, idle flows cut. The turn
 *   loop and the flow table (owners, connects, close, deadlines) are the TPROXY engine's
 *   (../tcp/splice/engine-epoll.ts, flow-table.ts).
 *
 * Sockets of a flow carry SO_LINGER {1, 0} until their FIN is sent (as in the TPROXY splice
 * engine): a refusal or a failure resets, a clean end stays a FIN.
 */
import { errnoName } from '../../core/errno.js';
import { errnoOf, TproxyError } from '../../core/errors.js';
import * as C from '../../core/net/constants.js';
import { decodeSockaddr, SOCKADDR_STORAGE_SIZE, type Endpoint } from '../../core/net/sockaddr.js';
import { decodeProxyHeader, maxProxyHeaderBytes } from '../../core/proxy-protocol/decode.js';
import { DescriptorBudget } from '../../sys/descriptor-budget.js';
import { loadLibc, type Libc } from '../../sys/libc.js';
import { SocketApi } from '../../sys/socket.js';
import type { ProxyEvent } from '../events.js';
import { EngineEpoll, waitBefore } from '../tcp/splice/engine-epoll.js';
import { FlowPump, type PairEnd } from '../tcp/splice/flow-pump.js';
import { CONNECTING, connectOutcome, FlowTable, type Expiry, type FlowSocket } from '../tcp/splice/flow-table.js';
import { NOT_WATCHED } from '../tcp/splice/interest.js';
import { PipePool, resizeRefusedMessage } from '../tcp/splice/pipe-pool.js';
import { newDirection, type Direction } from '../tcp/splice/pump.js';
import { duePrefix, EngineTimers, ReportedCounters, turnWait } from '../tcp/splice/timers.js';
import { AllowedSources } from './allowed-sources.js';
import { count, type MmproxyCounters } from './counters.js';
import { EntryReport } from './entry-report.js';
import type { FromMmproxyEngine, MmproxyEngineConfig, ToMmproxyEngine } from './splice-protocol.js';
import { openBackendSocket } from './backend-socket.js';
import { writeEarlyBytes } from './splice-early.js';

const MAX_EVENTS = 512;
const ACCEPT_BATCH = 64;
/**
 * The first read of a connection takes up to this much after the longest header allowed: the
 * client's first bytes, which the balancer sends with the header (a request, a TLS hello).
 */
const EARLY_BYTES = 16 * 1024;
/** The events a connection waiting for the rest of its header is watched for (edge-triggered: see onAccepted). */
const HEADER_EVENTS = C.EPOLLIN | C.EPOLLRDHUP | C.EPOLLET;
/**
 * The two sockets of a connection: small messages are copied (../tcp/splice/pump.ts), so a
 * connection holds a pipe only while bulk bytes are in flight, from the thread's shared pipes.
 */
export const SPLICE_DESCRIPTORS_PER_CONNECTION = 2;
/**
 * Pipes a thread's flows with bulk bytes in flight share (held and pooled; 32 flows at once, as a
 * pair each): their descriptors are taken from the budget once, at start. A flow that finds them
 * all held copies on, or waits in line when its sink left bytes unsent.
 */
const SHARED_PIPES = 64;
/** What a thread shares when the budget has no room for SHARED_PIPES: one flow's pair. */
const MIN_SHARED_PIPES = 2;

/** A connection whose PROXY header is being read. */
interface Pending {
  readonly kind: 'header';
  readonly cfd: number;
  readonly balancer: Endpoint;
  readonly deadline: number;
  /** The header's bytes read so far (read off the socket: it came in parts). */
  held: Buffer | undefined;
}

/** A health check without a health target: FIN sent after its header, read to its end. */
interface Closing {
  readonly kind: 'closing';
  readonly cfd: number;
  readonly deadline: number;
}

interface Flow {
  readonly kind: 'flow';
  readonly cfd: number;
  readonly ufd: number;
  readonly balancer: Endpoint;
  /** The client the header named; undefined for a health check. */
  readonly from: Endpoint | undefined;
  readonly backend: Endpoint;
  readonly up: Direction;
  readonly down: Direction;
  readonly started: number;
  readonly connectDeadline: number;
  /** The client's bytes read with the header, for the backend before anything else (undefined once written, or when none came). */
  early: Buffer | undefined;
  lastActive: number;
  connected: boolean;
  closed: boolean;
  cInterest: number;
  uInterest: number;
}

type Owner = { readonly kind: 'listener' } | Pending | Closing | FlowSocket<Flow>;


export class MmproxySpliceEngine {
  private readonly report: EntryReport;
  readonly counters: MmproxyCounters;
  readonly wakeFd: number;
  /** The owner posted a message (the wake eventfd fired). */
  woken = false;
  private readonly libc: Libc;
  private readonly api: SocketApi;
  private readonly loop: EngineEpoll;
  private readonly epoll: EngineEpoll['epoll'];
  private readonly allowed: AllowedSources;
  private readonly budget: DescriptorBudget | undefined;
  /** The thread's shared pipes (their descriptors taken from the budget at start: reservedPipes). */
  private readonly pipes: PipePool<Flow>;
  private readonly reservedPipes: number;
  private readonly pairs: FlowPump<Flow>;
  private readonly timers: EngineTimers;
  private readonly reported = new ReportedCounters();
  private readonly listeners = new Set<number>();
  private readonly accepting: Int32Array;
  private readonly table: FlowTable<Flow, { readonly kind: 'listener' } | Pending | Closing>;
  private readonly owners: Map<number, Owner>;
  /** Connections reading their header, in accept order (so in deadline order). */
  private readonly pending = new Set<Pending>();
  private readonly closing = new Set<Closing>();
  private readonly flows: Set<Flow>;
  /** 'drain': no new connections, those in progress end on their own; 'stop': reset them all. */
  private ending: 'drain' | 'stop' | undefined;
  /**
   * Accepting again at this time (out of descriptors: EMFILE or ENFILE on accept, the listening
   * sockets out of the epoll set meanwhile, as on the uring engine); 0: not waiting.
   */
  private resumeAt = 0;
  private readonly addr = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
  private readonly addrLen = Buffer.alloc(4);
  private readonly noLinger = Buffer.alloc(8);
  /** A connection's first read: the longest header the size bound allows, and EARLY_BYTES of the client's after it. */
  private readonly head: Buffer;
  private readonly headerBound: number;
  private readonly discard = Buffer.alloc(4096);

  constructor(
    private readonly config: MmproxyEngineConfig,
    private readonly post: (message: FromMmproxyEngine) => void,
    libc: Libc = loadLibc(),
    private readonly now: () => number = Date.now,
  ) {
    this.libc = libc;
    this.api = new SocketApi(libc);
    this.accepting = new Int32Array(config.accepting);
    this.report = new EntryReport(config, now);
    this.counters = this.report.counters;
    this.allowed = new AllowedSources(config.allowedSources, `mmproxy ${config.name}: allowedSources`);
    this.budget = config.budget ? DescriptorBudget.attach(config.budget) : undefined;
    this.reservedPipes = this.reservePipes();
    // Without room for even one pair in the budget, the thread still shares one (4 descriptors past it).
    this.pipes = new PipePool<Flow>(libc, config.pipeBytes, Math.max(MIN_SHARED_PIPES, this.reservedPipes));
    this.report.pipes = this.pipes;
    this.pipes.onResizeRefused = (errno, bytes) => {
      const code = errnoName(errno);
      this.emit({ type: 'error', code, message: resizeRefusedMessage(`mmproxy ${config.name} splice engine`, code, bytes, 'tproxy_mmproxy_pipe_resizes_refused_total') });
    };
    this.timers = new EngineTimers(config.idleTimeoutMs, config.countersIntervalMs);
    this.headerBound = maxProxyHeaderBytes({ maxV2Bytes: config.maxHeaderBytes });
    this.head = Buffer.alloc(this.headerBound + EARLY_BYTES);
    this.loop = new EngineEpoll(libc, this.api, MAX_EVENTS);
    this.epoll = this.loop.epoll;
    this.wakeFd = this.loop.wakeFd;
    this.pairs = new FlowPump(libc, this.api, this.pipes, this.epoll, config.pipeBytes, now, 'backend');
    this.table = new FlowTable(this.epoll, this.pairs);
    this.owners = this.table.owners;
    this.flows = this.table.flows;
    this.watch(config.listeners);
  }

  /** The pipes whose descriptors the budget gives the thread: SHARED_PIPES, else MIN_SHARED_PIPES, else none. */
  private reservePipes(): number {
    if (!this.budget || this.budget.acquire('mmproxy', 2 * SHARED_PIPES)) return SHARED_PIPES;
    return this.budget.acquire('mmproxy', 2 * MIN_SHARED_PIPES) ? MIN_SHARED_PIPES : 0;
  }

  get stopping(): boolean {
    return this.ending !== undefined;
  }

  /** TCP connections in progress: both of each flow (balancer and backend side), headers being read, health checks closing. */
  get connections(): number {
    return 2 * this.flows.size + this.pending.size + this.closing.size;
  }

  private watch(fds: readonly number[]): void {
    for (const fd of fds) {
      if (this.listeners.has(fd)) continue;
      this.listeners.add(fd);
      this.owners.set(fd, { kind: 'listener' });
      // Paused: watched again with the others when accepting resumes.
      if (this.resumeAt === 0) this.epoll.add(fd, C.EPOLLIN | C.EPOLLEXCLUSIVE);
    }
  }

  /**
   * Out of descriptors: the listening sockets leave the epoll set until DESCRIPTOR_RETRY_MS from
   * now (level-triggered, a connection waiting in the backlog would be reported, and its accept
   * fail, on every turn), then rejoin it (resumeAccepting).
   */
  private pauseAccepting(): void {
    for (const fd of this.listeners) this.epoll.remove(fd);
    this.resumeAt = this.now() + C.DESCRIPTOR_RETRY_MS;
  }

  private resumeAccepting(now: number): void {
    if (this.resumeAt === 0 || now < this.resumeAt) return;
    this.resumeAt = 0;
    for (const fd of this.listeners) this.epoll.add(fd, C.EPOLLIN | C.EPOLLEXCLUSIVE);
  }

  private unwatch(fds: Iterable<number>): void {
    for (const fd of [...fds]) {
      if (!this.listeners.delete(fd)) continue;
      this.owners.delete(fd);
      this.epoll.remove(fd);
    }
  }

  handle(message: ToMmproxyEngine): void {
    if (message.kind === 'watch') {
      if (!this.ending) this.watch(message.fds);
    } else if (message.kind === 'release') {
      this.unwatch(message.fds);
      this.post({ kind: 'released', requestId: message.requestId });
    } else {
      this.unwatch(this.listeners);
      if (this.ending !== 'stop') this.ending = message.kind;
      this.pipes.draining = true;
      if (message.kind === 'stop') this.resetAll();
    }
  }

  private emit(event: ProxyEvent): void {
    this.report.emit(event);
  }

  /** Something of the engine's own is due later: flows (idle timeout, bytes, connects), headers, health checks closing, an accept retry, an end. */
  get timed(): boolean {
    return this.flows.size > 0 || this.pending.size > 0 || this.closing.size > 0 || this.resumeAt !== 0 || this.ending !== undefined;
  }

  /** The owner got the counters as they are now (only asked while nothing is timed, so the copy is small). */
  get countersReported(): boolean {
    return this.reported.current(this.copyCounters());
  }

  /**
   * One loop turn: wait for events (up to waitMs, the first header's deadline; up to
   * IDLE_WAIT_MAX_MS when nothing is timed and the owner has the counters), handle them, run
   * timers. False once ended.
   */
  turn(waitMs: number): boolean {
    const firstHeader = this.pending.values().next().value;
    if (this.loop.dispatch(waitBefore(waitMs, firstHeader, this.now, () => turnWait(waitMs, this)), this.onReady)) this.woken = true;
    const now = this.now();
    if (firstHeader) for (const p of duePrefix(this.pending, now, (x) => x.deadline)) this.reject(p, 'header-timeout');
    if (this.timers.scanDue(now)) this.scan(now);
    this.resumeAccepting(now);
    this.pairs.wakeWaiters(this.flows.size, (flow, end) => this.ended(flow, end));
    this.report.post(this.post, () => this.flows, this.connections, this.timers.countersDue(now), this.reported, this.timed);
    if (this.ending && this.connections === 0) {
      this.post({ kind: 'stopped', counters: this.copyCounters() });
      this.pipes.closeIdle();
      if (this.reservedPipes > 0) this.budget?.release('mmproxy', 2 * this.reservedPipes);
      this.epoll.close();
      // The wake eventfd stays open: the owner may still write to it, and closes it once this thread exited.
      return false;
    }
    return true;
  }

  private readonly onReady = (fd: number, events: number): void => {
    const owner = this.owners.get(fd);
    if (!owner) return;
    if (owner.kind === 'listener') this.acceptFrom(fd);
    else if (owner.kind === 'header') void this.onHeaderBytes(owner, events);
    else if (owner.kind === 'closing') this.onClosingBytes(owner);
    else if (!owner.flow.closed) this.onSocket(owner.flow, owner.kind, events);
  };

  private copyCounters(): MmproxyCounters {
    return this.report.snapshot(this.flows);
  }

  // ---- accepting and the header ---------------------------------------------------------------

  private acceptFrom(listener: number): void {
    for (let i = 0; i < ACCEPT_BATCH && this.resumeAt === 0 && this.listeners.has(listener) && Atomics.load(this.accepting, 0) === 1; i++) {
      this.addrLen.writeUInt32LE(this.addr.length, 0);
      const cfd = this.libc.accept4(listener, this.addr, this.addrLen, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC);
      if (cfd < 0) {
        const errno = this.libc.errno();
        // EINVAL: the owner shut the listener down (a drain or a stop); the message saying so follows.
        if (errno === C.EAGAIN || errno === C.EINTR || errno === C.EINVAL) return;
        if (errno !== C.ECONNABORTED) this.emit({ type: 'error', code: errnoName(errno), message: `mmproxy ${this.config.name} accept: ${errnoName(errno)}` });
        if (errno === C.EMFILE || errno === C.ENFILE) {
          this.pauseAccepting();
          return;
        }
        continue;
      }
      this.onAccepted(cfd, decodeSockaddr(this.addr, this.addrLen.readUInt32LE(0)));
    }
  }

  private onAccepted(cfd: number, balancer: Endpoint): void {
    // The descriptors of the whole connection before anything else; given back at its close.
    if (this.budget && !this.budget.acquire('mmproxy', SPLICE_DESCRIPTORS_PER_CONNECTION)) {
      this.refuse(cfd, balancer, 'descriptor-limit');
      return;
    }
    if (!this.allowed.has(balancer.address)) {
      this.budget?.release('mmproxy', SPLICE_DESCRIPTORS_PER_CONNECTION);
      this.refuse(cfd, balancer, 'source-not-allowed');
      return;
    }
    const pending: Pending = { kind: 'header', cfd, balancer, deadline: this.now() + this.config.headerTimeoutMs, held: undefined };
    // The balancer sends its header as soon as it is connected: mostly it is here already, and
    // the connection needs no epoll registration to wait for it.
    if (this.onHeaderBytes(pending, 0)) return;
    this.pending.add(pending);
    this.owners.set(cfd, pending);
    // Edge-triggered: the socket was read empty (a prefix is held), so the next bytes or the FIN
    // are a new edge; no readable report per turn in between.
    this.epoll.add(cfd, HEADER_EVENTS);
  }

  /**
   * Read what came (after a held prefix, up to the size bound; else with EARLY_BYTES of the
   * client's), decode, and keep what follows the header for the backend. False: the header is not
   * complete yet (its prefix held, wait for more bytes); true: relayed or refused.
   */
  private onHeaderBytes(p: Pending, events: number): boolean {
    const held = p.held?.length ?? 0;
    // After a prefix, no more than the header can still need: the client's bytes stay in the socket.
    const n = this.libc.recv(p.cfd, this.head, held > 0 ? this.headerBound - held : this.head.length, C.MSG_DONTWAIT);
    if (n < 0) {
      const errno = this.libc.errno();
      if (errno === C.EAGAIN || errno === C.EINTR) return false;
      this.reject(p, 'closed-before-header');
      return true;
    }
    if (n === 0) {
      // The FIN came inside the header: no more bytes will.
      this.reject(p, held > 0 ? 'truncated' : 'closed-before-header');
      return true;
    }
    const bytes = p.held ? Buffer.concat([p.held, this.head.subarray(0, n)]) : this.head.subarray(0, n);
    const result = decodeProxyHeader(bytes, { maxV2Bytes: this.config.maxHeaderBytes });
    if (result.kind === 'invalid') {
      this.reject(p, result.reason);
      return true;
    }
    if (result.kind === 'more') {
      // The FIN came with these bytes: no more will.
      if (events & (C.EPOLLRDHUP | C.EPOLLHUP)) {
        this.reject(p, 'truncated');
        return true;
      }
      // A copy: this.head is the next connection's. Never past the size bound (the decoder refuses a longer header).
      p.held = Buffer.from(bytes);
      return false;
    }
    const early = bytes.length > result.take ? Buffer.from(bytes.subarray(result.take)) : undefined;
    const watched = this.endPending(p);
    const route = this.report.route(result.header, p.balancer);
    if (route.kind === 'local') {
      if (route.target) this.startFlow(p.cfd, p.balancer, undefined, route.target, early, watched);
      // Nothing is relayed: the client's bytes are read to their end and dropped.
      else this.closeAfterHeader(p.cfd, watched);
    } else if (route.kind === 'refuse') this.refuseAfterHeader(p.cfd, p.balancer, route.reason);
    else this.startFlow(p.cfd, p.balancer, route.source, route.backend, early, watched);
    return true;
  }

  /**
   * No longer waiting for its header (a no-op when it never had to wait). True: its socket stays
   * in the epoll set (HEADER_EVENTS, owned by nobody: edge-triggered, so nothing is reported over
   * and over meanwhile), for what comes next to change with one MOD instead of a DEL and an ADD;
   * a close takes it out.
   */
  private endPending(p: Pending): boolean {
    if (!this.pending.delete(p)) return false;
    this.owners.delete(p.cfd);
    return true;
  }

  /** Refused while (or after) reading its header: counted, reported, reset. */
  private reject(p: Pending, reason: string): void {
    this.endPending(p);
    this.refuseAfterHeader(p.cfd, p.balancer, reason);
  }

  private refuseAfterHeader(cfd: number, balancer: Endpoint, reason: string): void {
    this.budget?.release('mmproxy', SPLICE_DESCRIPTORS_PER_CONNECTION);
    this.refuse(cfd, balancer, reason);
  }

  private refuse(cfd: number, balancer: Endpoint, reason: string): void {
    this.report.refused(balancer, reason);
    this.api.resetClose(cfd);
  }

  /**
   * A health check without a target: our FIN now, the balancer's side read to its end (or cut at
   * the header timeout). `watched`: the socket is in the epoll set already (endPending).
   */
  private closeAfterHeader(cfd: number, watched: boolean): void {
    this.libc.setsockopt(cfd, C.SOL_SOCKET, C.SO_LINGER, this.noLinger, 8);
    this.libc.shutdown(cfd, C.SHUT_WR);
    const c: Closing = { kind: 'closing', cfd, deadline: this.now() + this.config.headerTimeoutMs };
    this.closing.add(c);
    this.owners.set(cfd, c);
    if (watched) this.epoll.modify(cfd, C.EPOLLIN | C.EPOLLRDHUP);
    else this.epoll.add(cfd, C.EPOLLIN | C.EPOLLRDHUP);
  }

  private onClosingBytes(c: Closing): void {
    for (;;) {
      const n = this.libc.recv(c.cfd, this.discard, this.discard.length, C.MSG_DONTWAIT);
      if (n > 0) continue;
      if (n < 0 && (this.libc.errno() === C.EAGAIN || this.libc.errno() === C.EINTR)) return;
      this.endClosing(c, n === 0);
      return;
    }
  }

  private endClosing(c: Closing, clean: boolean): void {
    this.closing.delete(c);
    this.owners.delete(c.cfd);
    if (clean) this.libc.close(c.cfd);
    else this.api.resetClose(c.cfd);
    this.budget?.release('mmproxy', SPLICE_DESCRIPTORS_PER_CONNECTION);
  }

  // ---- flows ----------------------------------------------------------------------------------

  /**
   * Connect to `backend` (from `from` when given, transparently) without blocking; once connected,
   * `early` (the client's bytes read with the header) goes first, then the flow pumps. `watched`:
   * the client's socket is in the epoll set already (endPending); the pump changes its events.
   */
  private startFlow(cfd: number, balancer: Endpoint, from: Endpoint | undefined, backend: Endpoint, early: Buffer | undefined, watched: boolean): void {
    let ufd: number;
    try {
      const sockaddr = this.report.sockaddrOf(backend);
      ufd = this.connectBackend(sockaddr, backend.family, from, false);
      // EADDRNOTAVAIL: the client's address and port toward this backend is a connection of ours
      // still closing (the balancer reuses client ports quickly): the client's address with a port the kernel picks.
      if (ufd < 0) ufd = this.connectBackend(sockaddr, backend.family, from, true);
      if (ufd < 0) throw new TproxyError('ERR_SYSCALL', 'connect: C.EADDRNOTAVAIL', { errno: 'C.EADDRNOTAVAIL' });
    } catch (error) {
      const errno = errnoOf(error);
      count(this.counters.connectErrors, errno);
      this.emit({ type: 'error', code: errno, message: `mmproxy ${this.config.name}: backend socket from ${from?.address ?? 'this host'} to ${backend.address}:${backend.port}: ${(error as Error).message}` });
      this.api.resetClose(cfd);
      this.budget?.release('mmproxy', SPLICE_DESCRIPTORS_PER_CONNECTION);
      return;
    }
    const now = this.now();
    const flow: Flow = { kind: 'flow', cfd, ufd, balancer, from, backend, up: newDirection(), down: newDirection(), started: now, connectDeadline: now + this.config.connectTimeoutMs, early, lastActive: now, connected: false, closed: false, cInterest: watched ? HEADER_EVENTS : NOT_WATCHED, uInterest: NOT_WATCHED };
    this.counters.active++;
    this.table.add(flow);
  }

  /**
   * A backend socket whose non-blocking connect is under way; -1 on EADDRNOTAVAIL from a socket
   * bound to the client's own port (closed). Throws TproxyError otherwise.
   */
  private connectBackend(sockaddr: Buffer, family: C.Family, from: Endpoint | undefined, anyPort: boolean): number {
    const ufd = openBackendSocket(this.api, this.config.upstreamMark, family, from, anyPort);
    // Reset on crash until our FIN is sent (the pump clears it), as the client socket (from the listener).
    try {
      this.api.setResetOnClose(ufd, true);
    } catch (error) {
      this.libc.close(ufd);
      throw error;
    }
    if (this.libc.connect(ufd, sockaddr, sockaddr.length) === 0) return ufd;
    const errno = this.libc.errno();
    if (errno === C.EINPROGRESS) return ufd;
    this.api.resetClose(ufd);
    if (errno === C.EADDRNOTAVAIL && from && !anyPort) return -1;
    throw new TproxyError('ERR_SYSCALL', `connect: ${errnoName(errno)}`, { errno: errnoName(errno) });
  }

  private onSocket(flow: Flow, side: 'client' | 'upstream', events: number): void {
    if (!flow.connected) {
      if (side !== 'upstream') return;
      const outcome = connectOutcome(this.api, flow.ufd, events);
      if (outcome === CONNECTING) return;
      if (outcome !== 0) {
        const errno = errnoName(outcome);
        count(this.counters.connectErrors, errno);
        this.close(flow, errno);
        return;
      }
      this.table.connected(flow);
      this.api.setInt(flow.ufd, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
      const early = flow.early;
      if (early) {
        flow.early = undefined;
        const failed = this.writeEarly(flow, early);
        if (failed) {
          this.close(flow, failed);
          return;
        }
      }
      // The client's first bytes went with the header: more is read when epoll reports it (no
      // splice only to hear EAGAIN). Without them, the client's bytes are likely waiting: pumped
      // now. The backend's reply cannot have come yet (one that speaks first is reported by epoll).
      const end = this.pairs.all(flow, early === undefined, false);
      if (end) this.ended(flow, end);
      return;
    }
    const end = this.pairs.onEvents(flow, side, events);
    if (end) this.ended(flow, end);
  }

  /** The early bytes to the backend (splice-early.ts). Undefined, or the close reason. */
  private writeEarly(flow: Flow, early: Buffer): string | undefined {
    const errno = writeEarlyBytes(this.libc, flow.ufd, flow.up, early);
    return errno === undefined ? undefined : `backend-${errnoName(errno)}`;
  }

  /** The pair ended: a pipe that could not be had counts with connect errors. */
  private ended(flow: Flow, end: PairEnd): void {
    if (end.pipeErrno !== undefined) count(this.counters.connectErrors, end.pipeErrno);
    this.close(flow, end.reason);
  }

  private close(flow: Flow, reason: string): void {
    if (!this.table.close(flow, reason)) return;
    this.budget?.release('mmproxy', SPLICE_DESCRIPTORS_PER_CONNECTION);
    this.report.closed(flow, flow.backend, reason);
  }

  private scan(now: number): void {
    for (const c of duePrefix(this.closing, now, (x) => x.deadline)) this.endClosing(c, false);
    this.table.expire(now, this.timers.idleDue(now) ? this.config.idleTimeoutMs : undefined, this.expired);
  }

  private readonly expired = (flow: Flow, why: Expiry): void => {
    if (why === 'connect-timeout') count(this.counters.connectErrors, why);
    this.close(flow, why);
  };

  /** Stopping: every connection is reset (headers being read are not counted as refused: the listener went away). */
  private resetAll(): void {
    for (const p of [...this.pending]) {
      this.endPending(p);
      this.api.resetClose(p.cfd);
      this.budget?.release('mmproxy', SPLICE_DESCRIPTORS_PER_CONNECTION);
    }
    for (const c of [...this.closing]) this.endClosing(c, false);
    for (const flow of [...this.flows]) this.close(flow, 'stopped');
  }
}

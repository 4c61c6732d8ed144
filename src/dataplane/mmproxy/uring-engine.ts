/**
 * An mmproxy TCP listener on io_uring (`--tcp-engine uring`): the engine of one thread, beside the
 * splice one (splice-engine.ts), with the same owner (splice-relay.ts), messages
 * (splice-protocol.ts), counters and events, and the same behaviour step for step:
 *
 * - accepts queued on the ring on every listening socket the owner hands over (a few per socket;
 *   the threads of an entry all queue theirs, the kernel gives each connection to one); a source
 *   outside allowedSources, or no room in the descriptor budget, is reset;
 * - the PROXY header is the first-bytes phase of the ring relay (../tcp/uring/ring-relay.ts, with
 *   core/proxy-protocol as its decoder): received into a provided buffer, decoded, bounded by the
 *   header timeout (this engine's deadline) and the size bound (the decoder's); the client's bytes
 *   after it stay in their buffer and are the first sent to the backend;
 * - LOCAL: relayed to the health target from this host, or closed cleanly after the header (our
 *   FIN, the balancer's side read to its end, cut at the header timeout);
 * - PROXY: the backend socket opened from the client's address and port (IP_TRANSPARENT, the
 *   upstream mark; the port taken: another port), as the TPROXY uring engine opens its upstream
 *   socket (../tcp/uring/ring-connect.ts): socket() the only synchronous call, its options, bind
 *   and connect (linked to the connect timeout) queued on the ring where the kernel can (else
 *   backend-socket.ts's synchronous calls and the connect through the ring). EADDRNOTAVAIL at the
 *   connect (the client's address and port toward this backend still closing here): once more
 *   from another port. Then the ring relay both ways, FINs passed on, idle flows cut.
 *
 * A connection accepted by an accept already queued when the owner stops this entry accepting (a
 * reload hands the listening sockets over, a drain) is served here, and drains with the rest.
 */
import { errnoName } from '../../core/errno.js';
import { errnoOf } from '../../core/errors.js';
import { FirstBytes, type FirstBytesDecoder, type FirstBytesStep } from '../../core/first-bytes.js';
import * as C from '../../core/net/constants.js';
import * as U from '../../core/net/io-uring.js';
import { decodeSockaddr, SOCKADDR_STORAGE_SIZE, type Endpoint } from '../../core/net/sockaddr.js';
import { proxyHeaderDecoder } from '../../core/proxy-protocol/first-bytes.js';
import type { ProxyHeader } from '../../core/proxy-protocol/header.js';
import { DescriptorBudget } from '../../sys/descriptor-budget.js';
import { IoUring, type BufferRing } from '../../sys/io-uring.js';
import { loadLibc, type Libc } from '../../sys/libc.js';
import { SocketApi } from '../../sys/socket.js';
import type { ProxyEvent } from '../events.js';
import { duePrefix, EngineTimers, ReportedCounters, turnWait } from '../tcp/splice/timers.js';
import { probeRingSockets, type RingSetupSupport } from '../tcp/uring/ring-probe.js';
import { holdsFirstBytes, newDirection, RelayOp, RingRelay, type RelayPair } from '../tcp/uring/ring-relay.js';
import { URING_BIG_BUFFERS, URING_BUFFER_BYTES, URING_BUFFERS } from '../tcp/uring/engine.js';
import { RingConnector, type RingConnecting } from '../tcp/uring/ring-connect.js';
import { upstreamSetup } from '../tcp/uring/upstream-setup.js';
import { AllowedSources } from './allowed-sources.js';
import { openBackendSocket } from './backend-socket.js';
import { count, type MmproxyCounters } from './counters.js';
import { EntryReport } from './entry-report.js';
import type { FromMmproxyEngine, MmproxyEngineConfig, ToMmproxyEngine } from './splice-protocol.js';

const RING_ENTRIES = 4096;
const BUFFER_GROUP = 1;
/** Accepts queued per listening socket, and the slots (peer addresses) for all of them. */
const ACCEPTS_PER_LISTENER = 8;
const ACCEPT_SLOTS = 256;
/** The two sockets of a connection (no pipes on this engine). */
export const URING_DESCRIPTORS_PER_CONNECTION = 2;

/** Operation kinds in user_data (4-7, 12, 16, 17, 21 and 22 are the ring relay's; 2, 3, 11, 14, 15 and 20 the connector's). */
const Op = {
  Accept: 1,
  Wake: 8,
  Cancel: 9,
  /** A recv of a health check closing after its header: read to its end, thrown away. */
  Discard: 10,
  Probe: 13,
} as const;

interface Flow extends RelayPair<ProxyHeader>, RingConnecting {
  readonly balancer: Endpoint;
  /**
   * header: its PROXY header is being read (until `deadline`); closing: a health check without a
   * target, after our FIN (until `deadline`); connecting, relaying: a flow to `backend`.
   */
  state: 'header' | 'closing' | 'connecting' | 'relaying';
  deadline: number;
  /** The client the header named; undefined for a health check. */
  from: Endpoint | undefined;
  backend: Endpoint | undefined;
  sockaddr: Buffer | undefined;
  readonly started: number;
}

interface Listening {
  readonly fd: number;
  inFlight: number;
  /** Its accepts fail (EINVAL: the owner shut it down): none queued again. */
  dead: boolean;
}


export class MmproxyUringEngine {
  private readonly report: EntryReport;
  readonly counters: MmproxyCounters;
  readonly wakeFd: number;
  woken = false;
  private readonly libc: Libc;
  private readonly api: SocketApi;
  private readonly ring: IoUring;
  private readonly buffers: BufferRing;
  private readonly relay: RingRelay<Flow, ProxyHeader>;
  /** The backend socket's setup and connect through the ring. */
  private readonly connector: RingConnector<Flow>;
  /** The backend socket's setup, SO_LINGER and closes through the ring (probed at start). */
  readonly ringSetup: RingSetupSupport;
  private readonly decoder: FirstBytesDecoder<ProxyHeader>;
  private readonly allowed: AllowedSources;
  private readonly budget: DescriptorBudget | undefined;
  private readonly accepting: Int32Array;
  private readonly timers: EngineTimers;
  private readonly reported = new ReportedCounters();
  private readonly listeners = new Map<number, Listening>();
  /** Accept slots: the listener each queued accept is on (-1: free), and the peer sockaddr the kernel writes. */
  private readonly slots = new Int32Array(ACCEPT_SLOTS).fill(-1);
  private readonly freeSlots: number[] = Array.from({ length: ACCEPT_SLOTS }, (_, i) => ACCEPT_SLOTS - 1 - i);
  private readonly peers = Buffer.alloc(ACCEPT_SLOTS * (SOCKADDR_STORAGE_SIZE + 4));
  /** Where the kernel writes each accept slot's peer sockaddr and its length (made once). */
  private readonly peerSlots: readonly { readonly address: number; readonly length: number }[];
  private readonly flows = new Map<number, Flow>();
  /** Connections reading their header, in accept order (so in deadline order). */
  private readonly headers = new Set<Flow>();
  /** Health checks closing after their header, in deadline order. */
  private readonly closing = new Set<Flow>();
  private nextId = 1;
  /** Accepting again at this time (out of descriptors); 0: not waiting. */
  private resumeAt = 0;
  /** 'drain': no new connections, those in progress end on their own; 'stop': reset them all. */
  private ending: 'drain' | 'stop' | undefined;
  private finished = false;
  private readonly u64 = Buffer.alloc(8);
  private readonly noLinger = Buffer.alloc(8);

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
    this.decoder = proxyHeaderDecoder({ maxV2Bytes: config.maxHeaderBytes });
    this.timers = new EngineTimers(config.idleTimeoutMs, config.countersIntervalMs);
    const peersAddress = Number(libc.address(this.peers));
    this.peerSlots = Array.from({ length: ACCEPT_SLOTS }, (_, slot) => ({ address: peersAddress + slot * SOCKADDR_STORAGE_SIZE, length: peersAddress + ACCEPT_SLOTS * SOCKADDR_STORAGE_SIZE + slot * 4 }));
    this.ring = new IoUring(RING_ENTRIES);
    try {
      this.buffers = this.ring.bufferRing(BUFFER_GROUP, URING_BUFFERS, URING_BUFFER_BYTES);
    } catch (error) {
      this.ring.close();
      throw error;
    }
    // The backend socket's options and bind, SO_LINGER off and the closes of an orderly end through
    // the ring where the kernel can (6.11).
    this.ringSetup = probeRingSockets(this.ring, libc, this.api, { bind: true, kind: Op.Probe });
    this.connector = new RingConnector<Flow>(this.ring, libc, this.api, {
      mark: config.upstreamMark,
      ttl: undefined,
      connectTimeoutMs: config.connectTimeoutMs,
      // From the client's address (and port, unless taken), or from this host for a health check.
      setup: (flow) => upstreamSetup(flow.from ?? flow.backend!, { kind: flow.from ? 'transparent' : 'direct' }, { dscp: false, ttl: false }, flow.portTaken, holdsFirstBytes(flow)),
      connected: (flow, res) => this.onConnect(flow, res),
      failed: (flow, errno) => this.connectFailed(flow, errno, errno),
    });
    this.relay = new RingRelay<Flow, ProxyHeader>(this.ring, this.buffers, libc, this.api, now, {
      group: BUFFER_GROUP,
      bufferBytes: URING_BUFFER_BYTES,
      big: URING_BIG_BUFFERS,
      ringSockets: this.ringSetup.sockets,
      end: (flow, reason, lastFin) => this.close(flow, reason, lastFin),
      decided: (flow, step) => this.onHeader(flow, step),
    });
    this.wakeFd = libc.eventfd(0, C.EFD_NONBLOCK | C.EFD_CLOEXEC);
    if (this.wakeFd < 0) this.api.fail('eventfd');
    this.ring.pollMultishot(this.wakeFd, C.EPOLLIN, Op.Wake, 0);
    this.watch(config.listeners);
  }

  get stopping(): boolean {
    return this.ending !== undefined;
  }

  /** TCP connections in progress: both of each flow (balancer and backend side), headers being read, health checks closing. */
  get connections(): number {
    return 2 * (this.flows.size - this.headers.size - this.closing.size) + this.headers.size + this.closing.size;
  }

  /** Something of the engine's own is due later: flows (idle timeout, bytes), headers, health checks closing, an accept retry, an end. */
  get timed(): boolean {
    return this.flows.size > 0 || this.connector.orphaned > 0 || this.resumeAt !== 0 || this.ending !== undefined;
  }

  /** The owner got the counters as they are now (only asked while nothing is timed, so the copy is small). */
  get countersReported(): boolean {
    return this.reported.current(this.copyCounters());
  }

  handle(message: ToMmproxyEngine): void {
    if (message.kind === 'watch') {
      if (!this.ending) this.watch(message.fds);
    } else if (message.kind === 'release') {
      this.unwatch(message.fds);
      this.post({ kind: 'released', requestId: message.requestId });
    } else {
      this.unwatch([...this.listeners.keys()]);
      if (this.ending !== 'stop') this.ending = message.kind;
      if (message.kind === 'stop') this.resetAll();
    }
  }

  private watch(fds: readonly number[]): void {
    for (const fd of fds) if (!this.listeners.has(fd)) this.listeners.set(fd, { fd, inFlight: 0, dead: false });
    this.armAccepts();
  }

  /** Its accepts cancelled now (their CQEs come later, to a listener no longer here): the owner may close it once answered. */
  private unwatch(fds: readonly number[]): void {
    for (const fd of fds) {
      if (!this.listeners.delete(fd)) continue;
      if (this.ring.queued > 0) this.ring.submit(0, -1);
      this.ring.cancelFdNow(fd);
    }
  }

  private emit(event: ProxyEvent): void {
    this.report.emit(event);
  }

  /**
   * One loop turn: submit what is queued and wait (up to waitMs, the first header's deadline; up
   * to IDLE_WAIT_MAX_MS when nothing is timed and the owner has the counters) for completions,
   * handle them, run timers. False once ended.
   */
  turn(waitMs: number): boolean {
    const firstHeader = this.headers.values().next().value;
    this.ring.submit(1, firstHeader ? Math.max(0, Math.min(waitMs, firstHeader.deadline - this.now())) : turnWait(waitMs, this));
    const c = this.ring.completion;
    while (this.ring.next()) this.complete(c.kind, c.id, c.res, c.flags);
    const now = this.now();
    // (The first header's deadline checked first: no list made on a turn where none is due.)
    if (firstHeader && now >= firstHeader.deadline) for (const flow of duePrefix(this.headers, now, (f) => f.deadline)) this.reject(flow, 'header-timeout');
    if (this.timers.scanDue(now)) this.scan(now);
    this.report.post(this.post, this.openFlowsNow, this.connections, this.timers.countersDue(now), this.reported, this.timed);
    if (this.ending && this.flows.size === 0) {
      this.finish();
      return false;
    }
    return true;
  }

  /** openFlows for report.post, made once (not a closure per loop turn). */
  private readonly openFlowsNow = (): Iterable<Flow> => this.openFlows();

  /** The flows whose bytes the counters count in while open (not a header being read or a health check closing). */
  private *openFlows(): Iterable<Flow> {
    for (const f of this.flows.values()) if (f.state === 'connecting' || f.state === 'relaying') yield f;
  }

  private copyCounters(): MmproxyCounters {
    return this.report.snapshot(this.openFlows());
  }

  private complete(kind: number, id: number, res: number, flags: number): void {
    switch (kind) {
      case Op.Accept:
        this.onAccept(id, res);
        return;
      case Op.Wake:
        this.libc.read(this.wakeFd, this.u64, 8);
        this.woken = true;
        if ((flags & U.IORING_CQE_F_MORE) === 0 && !this.finished) this.ring.pollMultishot(this.wakeFd, C.EPOLLIN, Op.Wake, 0);
        return;
      case Op.Cancel:
      case Op.Probe:
      case RelayOp.Cancel:
      case RelayOp.Finish:
        return;
    }
    if (RingConnector.quiet(kind)) return;
    const flow = this.flows.get(id);
    if (!flow || flow.closed) {
      // A connection ended before its operations completed: a buffer it was lent goes back, a
      // backend socket kept for its setup chain is closed.
      this.relay.giveBackFlags(flags, kind);
      this.connector.gone(kind, id);
      return;
    }
    if (this.connector.complete(kind, flow, res)) return;
    flow.pending--;
    if (kind === Op.Discard) this.onDiscard(flow, res, flags);
    else this.relay.complete(kind, flow, res, flags);
  }

  // ---- accepting and the header ---------------------------------------------------------------

  private armAccepts(): void {
    if (this.ending || this.resumeAt !== 0 || Atomics.load(this.accepting, 0) !== 1) return;
    for (const l of this.listeners.values()) {
      while (!l.dead && l.inFlight < ACCEPTS_PER_LISTENER) {
        const slot = this.freeSlots.pop();
        if (slot === undefined) return;
        this.slots[slot] = l.fd;
        const lengthAt = ACCEPT_SLOTS * SOCKADDR_STORAGE_SIZE + slot * 4;
        this.peers.writeUInt32LE(SOCKADDR_STORAGE_SIZE, lengthAt);
        this.ring.accept(l.fd, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, Op.Accept, slot, this.peerSlots[slot]);
        l.inFlight++;
      }
    }
  }

  private onAccept(slot: number, res: number): void {
    const listener = this.listeners.get(this.slots[slot] ?? -1);
    this.slots[slot] = -1;
    this.freeSlots.push(slot);
    if (listener) listener.inFlight--;
    if (res < 0) {
      // The listener was released (its accepts cancelled), or shut down by the owner (EINVAL; a drain
      // or a stop, the message saying so follows): nothing to say.
      if (!listener || res === -C.EINVAL) {
        if (listener) listener.dead = true;
      } else if (res === -C.EMFILE || res === -C.ENFILE) {
        this.emit({ type: 'error', code: errnoName(-res), message: `mmproxy ${this.config.name} accept: ${errnoName(-res)}` });
        this.resumeAt = this.now() + C.DESCRIPTOR_RETRY_MS;
      } else if (res !== -C.ECANCELED && res !== -C.ECONNABORTED && res !== -C.EAGAIN && res !== -C.EINTR) {
        this.emit({ type: 'error', code: errnoName(-res), message: `mmproxy ${this.config.name} accept: ${errnoName(-res)}` });
      }
      this.armAccepts();
      return;
    }
    const cfd = res;
    const balancer = this.acceptedPeer(slot);
    this.armAccepts();
    if (this.ending === 'stop' || this.finished || !balancer) {
      this.api.resetClose(cfd);
      return;
    }
    this.onAccepted(cfd, balancer);
  }

  private acceptedPeer(slot: number): Endpoint | undefined {
    try {
      return decodeSockaddr(this.peers, Math.min(SOCKADDR_STORAGE_SIZE, this.peers.readUInt32LE(ACCEPT_SLOTS * SOCKADDR_STORAGE_SIZE + slot * 4)), slot * SOCKADDR_STORAGE_SIZE);
    } catch {
      return undefined;
    }
  }

  private onAccepted(cfd: number, balancer: Endpoint): void {
    // The descriptors of the whole connection before anything else; given back at its close.
    if (this.budget && !this.budget.acquire('mmproxy', URING_DESCRIPTORS_PER_CONNECTION)) {
      this.refuse(cfd, balancer, 'descriptor-limit');
      return;
    }
    if (!this.allowed.has(balancer.address)) {
      this.budget?.release('mmproxy', URING_DESCRIPTORS_PER_CONNECTION);
      this.refuse(cfd, balancer, 'source-not-allowed');
      return;
    }
    const now = this.now();
    const flow: Flow = {
      id: this.nextId++, cfd, ufd: -1, closed: false, up: newDirection(), down: newDirection(), lastActive: now, pending: 0, first: new FirstBytes(this.decoder),
      balancer, state: 'header', deadline: now + this.config.headerTimeoutMs, from: undefined, backend: undefined, sockaddr: undefined, started: now,
      dscp: undefined, portTaken: false, setupValues: undefined, chain: false, setupErrno: 0,
    };
    this.flows.set(flow.id, flow);
    this.headers.add(flow);
    this.relay.recvFirst(flow);
  }

  /** The first-bytes phase decided: the header refused, or a flow (or a health check) begins. */
  private onHeader(flow: Flow, step: Exclude<FirstBytesStep<ProxyHeader>, { kind: 'more' }>): void {
    if (step.kind === 'fail') {
      this.reject(flow, step.reason);
      return;
    }
    this.headers.delete(flow);
    const route = this.report.route(step.value, flow.balancer);
    if (route.kind === 'local') {
      if (route.target) this.startFlow(flow, undefined, route.target);
      else this.closeAfterHeader(flow);
    } else if (route.kind === 'refuse') this.reject(flow, route.reason);
    else this.startFlow(flow, route.source, route.backend);
  }

  /** Refused while (or after) reading its header: counted, reported, reset. */
  private reject(flow: Flow, reason: string): void {
    this.drop(flow);
    this.budget?.release('mmproxy', URING_DESCRIPTORS_PER_CONNECTION);
    this.refuse(-1, flow.balancer, reason);
  }

  /** A connection that never became a flow: its socket reset, its operations and buffers let go. */
  private drop(flow: Flow): void {
    flow.closed = true;
    flow.first = undefined;
    this.headers.delete(flow);
    this.closing.delete(flow);
    this.flows.delete(flow.id);
    this.relay.closeSockets(flow, flow.ufd >= 0 ? [flow.cfd, flow.ufd] : [flow.cfd], 'reset');
  }

  private refuse(cfd: number, balancer: Endpoint, reason: string): void {
    this.report.refused(balancer, reason);
    if (cfd >= 0) this.api.resetClose(cfd);
  }

  /** A health check without a target: our FIN now, the balancer's side read to its end (or cut at the header timeout). */
  private closeAfterHeader(flow: Flow): void {
    this.relay.releaseHeld(flow);
    this.libc.setsockopt(flow.cfd, C.SOL_SOCKET, C.SO_LINGER, this.noLinger, 8);
    this.libc.shutdown(flow.cfd, C.SHUT_WR);
    flow.state = 'closing';
    flow.deadline = this.now() + this.config.headerTimeoutMs;
    this.closing.add(flow);
    this.discard(flow);
  }

  private discard(flow: Flow): void {
    flow.pending++;
    this.ring.recvSelect(flow.cfd, BUFFER_GROUP, URING_BUFFER_BYTES, Op.Discard, flow.id);
  }

  /** Bytes of a closing health check: thrown away until its FIN (a clean close) or an error (a reset). */
  private onDiscard(flow: Flow, res: number, flags: number): void {
    this.relay.giveBackFlags(flags);
    if (res > 0) this.discard(flow);
    // ENOBUFS (every buffer lent): no more reading; the header timeout cuts it.
    else if (res !== -C.ENOBUFS) this.endClosing(flow, res === 0);
  }

  private endClosing(flow: Flow, clean: boolean): void {
    flow.closed = true;
    this.closing.delete(flow);
    this.flows.delete(flow.id);
    this.relay.closeSockets(flow, [flow.cfd], clean ? 'done' : 'reset');
    this.budget?.release('mmproxy', URING_DESCRIPTORS_PER_CONNECTION);
  }

  // ---- flows ----------------------------------------------------------------------------------

  /** Connect to `backend` (from `from` when given, transparently) through the ring; the relay starts once connected. */
  private startFlow(flow: Flow, from: Endpoint | undefined, backend: Endpoint): void {
    flow.state = 'connecting';
    flow.from = from;
    flow.backend = backend;
    flow.sockaddr = this.report.sockaddrOf(backend);
    this.counters.active++;
    this.connect(flow);
  }

  /** The backend socket and its connect: through the ring where the kernel can, else opened with synchronous calls. */
  private connect(flow: Flow): void {
    if (this.ringSetup.sockets) {
      this.connector.open(flow);
      return;
    }
    const backend = flow.backend!;
    try {
      flow.ufd = openBackendSocket(this.api, this.config.upstreamMark, backend.family, flow.from, flow.portTaken);
      // Reset on crash until our FIN is sent (the relay clears it), as the client socket (from the listener).
      try {
        this.api.setResetOnClose(flow.ufd, true);
      } catch (error) {
        this.libc.close(flow.ufd);
        flow.ufd = -1;
        throw error;
      }
    } catch (error) {
      this.connectFailed(flow, errnoOf(error), (error as Error).message);
      return;
    }
    this.connector.connectOpened(flow);
  }

  /** No backend socket: a connect error, not a flow that ended (as on the splice engine). */
  private connectFailed(flow: Flow, errno: string, message: string): void {
    const backend = flow.backend!;
    count(this.counters.connectErrors, errno);
    this.emit({ type: 'error', code: errno, message: `mmproxy ${this.config.name}: backend socket from ${flow.from?.address ?? 'this host'} to ${backend.address}:${backend.port}: ${message}` });
    this.counters.active--;
    this.drop(flow);
    this.budget?.release('mmproxy', URING_DESCRIPTORS_PER_CONNECTION);
  }

  private onConnect(flow: Flow, res: number): void {
    if (res === -C.EADDRNOTAVAIL && flow.from && !flow.portTaken) {
      // The client's address and port toward this backend is a connection of ours still closing
      // (the balancer reuses client ports quickly): the client's address with a port the kernel picks.
      this.connector.again(flow, false);
      this.connect(flow);
      return;
    }
    if (res < 0) {
      // The linked timeout cancels the connect: ECANCELED is the deadline passing.
      const reason = res === -C.ECANCELED || res === -C.ETIME ? 'connect-timeout' : errnoName(-res);
      count(this.counters.connectErrors, reason);
      this.close(flow, reason);
      return;
    }
    flow.state = 'relaying';
    // TCP_NODELAY came with the setup where the ring did it.
    if (!this.ringSetup.sockets) this.api.setInt(flow.ufd, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
    this.relay.start(flow, this.ringSetup.sockets);
  }

  /** A flow (connecting or relaying) ends: counted, reported, its sockets closed (reset unless 'done'). */
  private close(flow: Flow, reason: string, lastFin?: number): void {
    if (flow.closed) return;
    flow.closed = true;
    this.flows.delete(flow.id);
    const orphaned = this.connector.release(flow);
    this.relay.closeSockets(flow, flow.ufd >= 0 && !orphaned ? [flow.cfd, flow.ufd] : [flow.cfd], reason, lastFin);
    this.budget?.release('mmproxy', URING_DESCRIPTORS_PER_CONNECTION);
    this.report.closed(flow, flow.backend!, reason);
  }

  private scan(now: number): void {
    if (this.resumeAt !== 0 && now >= this.resumeAt) {
      this.resumeAt = 0;
      this.armAccepts();
    }
    for (const flow of duePrefix(this.closing, now, (f) => f.deadline)) this.endClosing(flow, false);
    if (this.timers.idleDue(now)) {
      const idle = this.config.idleTimeoutMs;
      for (const flow of [...this.flows.values()]) if (flow.state === 'relaying' && now - flow.lastActive >= idle) this.close(flow, 'idle-timeout');
    }
  }

  /** Stopping: every connection is reset (headers being read are not counted as refused: the listener went away). */
  private resetAll(): void {
    for (const flow of [...this.flows.values()]) {
      if (flow.state === 'header') {
        this.drop(flow);
        this.budget?.release('mmproxy', URING_DESCRIPTORS_PER_CONNECTION);
      } else if (flow.state === 'closing') this.endClosing(flow, false);
      else this.close(flow, 'stopped');
    }
  }

  /**
   * The last connection ended: the closes queued on the ring go, the ring and its buffers are
   * released, then the owner hears 'stopped' (it terminates this thread once it has it: nothing
   * may be left to do by then). The wake eventfd is the owner's to close.
   */
  private finish(): void {
    this.finished = true;
    this.ring.submit(0, -1);
    const c = this.ring.completion;
    while (this.ring.next()) this.complete(c.kind, c.id, c.res, c.flags);
    this.ring.cancelFdNow(this.wakeFd);
    this.ring.close();
    this.relay.close();
    this.connector.closeOrphans();
    this.buffers.close();
    this.post({ kind: 'stopped', counters: this.copyCounters() });
  }

}

/**
 * The uring engine (prototype, opt-in with `--tcp-engine uring`): TCP relaying driven by one
 * io_uring per thread instead of epoll. A loop turn is one io_uring_enter that submits every
 * operation queued since the last turn and waits for completions; the operations themselves are
 * accepts (a few queued per listener, none at the connection cap), connect linked to a timeout, recv into a buffer the kernel
 * picks from a provided buffer ring when bytes arrive (so an idle flow holds no buffer), and send
 * of that buffer to the other socket. Bytes cross user memory but never enter JavaScript: a
 * completion names a buffer by id, and the send points the kernel at the same memory.
 *
 * One buffer in flight per direction: a direction's next recv is queued once its last buffer was
 * sent whole (backpressure). A FIN crosses as shutdown(SHUT_WR) (half-close); an error on either
 * socket resets both (SO_LINGER {1, 0}, as the other engines). At the connection cap no accept is
 * queued, so the kernel backlog holds new connections until a flow ends.
 *
 * Where the kernel has them (SOCKET_URING_OP_SETSOCKOPT 6.7, IORING_OP_BIND 6.11; probed at
 * start, else the synchronous calls of the other engines), a new connection's socket setup goes
 * through the ring too: the peer's address comes with the accept, the upstream socket's options
 * and bind are queued with its connect, and an orderly end queues SO_LINGER off and both closes.
 * What stays synchronous per connection: socket(), getsockname() (the original destination) and
 * one shutdown() per FIN.
 *
 * Per-flow admission (refusal, route decision, upstream socket, accounting) is ../admission.ts,
 * shared with the splice engine; the relay itself (recv, send, FIN, closes) is ring-relay.ts,
 * shared with mmproxy's uring engine.
 *
 * Routes by name: a connection whose name could change its route is sniffed first (the ring
 * relay's first-bytes phase, with core/sniff as the decoder): its bytes are received until a name,
 * a final no, its FIN or the sniff timeout, the route decided, and they go first to the upstream
 * it chose.
 *
 * PROXY protocol headers (an outbound's proxyProtocol) are the first bytes sent upstream once
 * connected, ahead of the client's.
 *
 * Not yet (the relay falls back to splice for them, saying why): upstream proxies (SOCKS5, HTTP
 * CONNECT).
 */
import { errnoName } from '../../../core/errno.js';
import { errnoOf } from '../../../core/errors.js';
import * as C from '../../../core/net/constants.js';
import * as U from '../../../core/net/io-uring.js';
import { decodeSockaddr, encodeSockaddr, SOCKADDR_STORAGE_SIZE, type Endpoint } from '../../../core/net/sockaddr.js';
import type { RouteDecision } from '../../../core/route/table.js';
import { FirstBytes } from '../../../core/first-bytes.js';
import { SNIFF_DECODER, type SniffOutcome } from '../../../core/sniff/first-bytes.js';
import { loadLibc, type Libc } from '../../../sys/libc.js';
import { IoUring, type BufferRing } from '../../../sys/io-uring.js';
import { SocketApi } from '../../../sys/socket.js';
import { FlowAdmission } from '../admission.js';
import { proxyHeaderFor, sendsProxyHeader } from '../routing.js';
import { increment, type TcpCounters } from '../counters.js';
import type { TcpFlowSnapshot } from '../flows.js';
import { probeRingSockets, type RingSetupSupport } from './ring-probe.js';
import { RingHandshake, type HandshakeEnd, type HandshakePair } from './ring-handshake.js';
import { holdsFirstBytes, newDirection, RelayOp, RingRelay, type RelayDirection, type RelayPair } from './ring-relay.js';
import { createHandshake } from '../../../core/upstream/handshake.js';

export { URING_SETUP_ENV, type RingSetupSupport } from './ring-probe.js';
import { upstreamSetup } from './upstream-setup.js';
import { RingConnector, type RingConnecting } from './ring-connect.js';
import type { FromEngine, SpliceEngineConfig, ToEngine } from '../splice/protocol.js';
import { GracefulStop } from '../splice/stop.js';
import { duePrefix, engineClock, EngineTimers, ReportedCounters, turnWait } from '../splice/timers.js';
import { EndpointCache } from '../splice/endpoint-cache.js';

const RING_ENTRIES = 4096;
/**
 * Accepts queued per listener: how many connections one loop turn can take from a backlog, and
 * how many can be accepted past the cap (they wait, parked, for a flow to end).
 */
const ACCEPTS_PER_LISTENER = 8;
/** Receive buffers: count (a power of two) and size. */
export const URING_BUFFERS = 1024;
export const URING_BUFFER_BYTES = 64 * 1024;
/** Big buffers for busy directions (the ring relay's): group, count and size. */
export const URING_BIG_BUFFERS = { group: 2, count: 32, size: 256 * 1024 } as const;
const BUFFER_GROUP = 1;

/** Operation kinds in user_data. */
const Op = {
  Accept: 1,
  // 2, 3, 11, 14, 15 and 20: the connector's (ConnectOp); 4-7, 12, 16, 17, 21 and 22: the relay's (RelayOp).
  Wake: 8,
  Cancel: 9,
  Probe: 13,
} as const;

/**
 * A connection whose route depends on its name: its first bytes are received (the ring relay's
 * first-bytes phase, sniffing as the decoder) until a name, a final no, its FIN or the sniff
 * timeout; then it becomes a flow, the bytes received going first to the upstream its route chose.
 */
interface Sniff extends RelayPair<SniffOutcome> {
  readonly listener: { readonly family: C.Family; readonly port: number };
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly deadline: number;
}

interface UFlow extends RelayPair<SniffOutcome>, HandshakePair, RingConnecting {
  readonly id: number;
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly decision: RouteDecision;
  /** The sockaddr connected to (the destination, or the upstream proxy): the kernel reads it until the connect completes. */
  readonly sockaddr: Buffer;
  /** In an upstream proxy's handshake: until when (the connect timeout from the flow's start). */
  handshakeDeadline: number;
  connected: boolean;
  readonly started: number;
}


/** Outbounds through an upstream proxy (a handshake before the relay). */
const proxied = (outbound: RouteDecision['outbound']): boolean => outbound.kind === 'socks5' || outbound.kind === 'http';

export class UringEngine {
  private readonly admission: FlowAdmission;
  private readonly counters: TcpCounters;
  readonly wakeFd: number;
  woken = false;
  private readonly libc: Libc;
  private readonly api: SocketApi;
  private readonly ring: IoUring;
  private readonly buffers: BufferRing;
  private readonly flows = new Map<number, UFlow>();
  /** Connections sniffing for their name, by id; and those whose deadline is still ahead, in deadline order. */
  private readonly sniffs = new Map<number, Sniff>();
  private readonly sniffDeadlines = new Set<Sniff>();
  private readonly handshakes: RingHandshake<UFlow>;
  /** Flows in an upstream proxy's handshake, in deadline order (the connect timeout covers it). */
  private readonly handshaking = new Set<UFlow>();
  private sniffTimeoutMs: number;
  private readonly listeners: { readonly fd: number; readonly family: C.Family; readonly port: number; inFlight: number; readonly freeSlots: number[] }[];
  /**
   * Connections accepted while the flows were at the cap (an accept queued before the cap was
   * reached completed after): they wait here, without an upstream socket, for a flow to end.
   * At most ACCEPTS_PER_LISTENER per listener.
   */
  private readonly parked: { readonly listener: { readonly family: C.Family; readonly port: number }; readonly cfd: number; readonly client: Endpoint; readonly destination: Endpoint }[] = [];
  /** At the cap (counted once per pause in acceptPauses). */
  private capped = false;
  private resumeAt = 0;
  private readonly stop = new GracefulStop();
  private readonly timers: EngineTimers;
  private readonly relay: RingRelay<UFlow | Sniff, SniffOutcome>;
  /** The upstream socket's setup and connect through the ring. */
  private readonly connector: RingConnector<UFlow>;
  private readonly reported = new ReportedCounters();
  private readonly u64 = Buffer.alloc(8);
  private readonly name = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
  private readonly nameLength = Buffer.alloc(4);
  /** Upstream socket setup, FIN and orderly close through the ring (probed at start). */
  readonly ringSetup: RingSetupSupport;
  /**
   * The peer's sockaddr per queued accept (slot i of listener l at (l * ACCEPTS_PER_LISTENER + i)),
   * written by the kernel: no getpeername per connection. Then a socklen_t per slot.
   */
  private readonly peers: Buffer;
  /** Address strings and destinations shared by the flows (kept for each flow's life). */
  private readonly endpoints = new EndpointCache();
  private readonly peerLengthsAt: number;
  private readonly peersAddress: bigint;

  constructor(
    private readonly config: SpliceEngineConfig,
    private readonly post: (message: FromEngine) => void,
    libc: Libc = loadLibc(),
    private readonly now: () => number = engineClock(),
  ) {
    this.libc = libc;
    this.api = new SocketApi(libc);
    this.admission = new FlowAdmission(config, this.api, now);
    this.counters = this.admission.counters;
    this.timers = new EngineTimers(config.idleTimeoutMs, config.countersIntervalMs);
    this.ring = new IoUring(RING_ENTRIES);
    this.buffers = this.ring.bufferRing(BUFFER_GROUP, URING_BUFFERS, URING_BUFFER_BYTES);
    this.connector = new RingConnector<UFlow>(this.ring, libc, this.api, {
      mark: config.upstreamMark,
      ttl: config.headers.ttl,
      connectTimeoutMs: config.connectTimeoutMs,
      // Upstream proxies open their socket synchronously (startFlow): never through the ring.
      setup: (flow) => upstreamSetup(flow.client, flow.decision.outbound, { dscp: flow.dscp !== undefined, ttl: config.headers.ttl !== undefined }, flow.portTaken, holdsFirstBytes(flow) || sendsProxyHeader(flow.decision.outbound)),
      connected: (flow, res) => this.onConnect(flow, res),
      failed: (flow, errno) => this.dropFlow(flow, errno),
      portFallback: () => this.counters.clientPortFallbacks++,
    });
    this.ringSetup = probeRingSockets(this.ring, libc, this.api, { bind: true, kind: Op.Probe });
    this.sniffTimeoutMs = config.sniffTimeoutMs;
    this.relay = new RingRelay<UFlow | Sniff, SniffOutcome>(this.ring, this.buffers, libc, this.api, now, {
      group: BUFFER_GROUP,
      bufferBytes: URING_BUFFER_BYTES,
      big: URING_BIG_BUFFERS,
      ringSockets: this.ringSetup.sockets,
      // Only flows relay (a sniff becomes a flow before its relay starts).
      end: (flow, reason, lastFin) => this.close(flow as UFlow, reason, lastFin),
      decided: (sniff, step) => this.onSniffed(sniff as Sniff, step.kind === 'done' ? step.value : { outcome: 'closed', name: undefined }),
    });
    this.handshakes = new RingHandshake<UFlow>(this.ring, this.buffers, libc, {
      group: BUFFER_GROUP,
      bufferBytes: URING_BUFFER_BYTES,
      giveBack: (bid) => this.relay.giveBack(bid),
      ended: (flow, end) => this.onHandshakeEnd(flow, end),
    });
    this.wakeFd = libc.eventfd(0, C.EFD_NONBLOCK | C.EFD_CLOEXEC);
    if (this.wakeFd < 0) this.api.fail('eventfd');
    this.ring.pollMultishot(this.wakeFd, C.EPOLLIN, Op.Wake, 0);
    this.listeners = config.listeners.map((l) => ({ ...l, inFlight: 0, freeSlots: Array.from({ length: ACCEPTS_PER_LISTENER }, (_, i) => i) }));
    this.peerLengthsAt = this.listeners.length * ACCEPTS_PER_LISTENER * SOCKADDR_STORAGE_SIZE;
    this.peers = Buffer.alloc(this.peerLengthsAt + this.listeners.length * ACCEPTS_PER_LISTENER * 4);
    this.peersAddress = libc.address(this.peers);
    for (const l of this.listeners) this.api.setInt(l.fd, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
    this.armAccepts();
  }

  get stopping(): boolean {
    return this.stop.stopping;
  }

  /** io_uring_enter calls so far. */
  get enters(): number {
    return this.ring.enters;
  }

  handle(message: ToEngine): void {
    if (message.kind === 'local-addresses') this.admission.localAddresses = new Set(message.addresses);
    else if (message.kind === 'snapshot') this.post({ kind: 'snapshot', requestId: message.requestId, counters: this.snapshot(), flows: this.busiest(message.limit) });
    else if (message.kind === 'routing') {
      this.admission.reroute(message.routing);
      this.sniffTimeoutMs = message.sniffTimeoutMs;
      this.post({ kind: 'routing', requestId: message.requestId });
    } else if (message.kind === 'close-flow') {
      const flow = this.flows.get(message.id);
      if (flow) this.close(flow, message.reason);
      this.post({ kind: 'close-flow', requestId: message.requestId, closed: flow !== undefined });
    } else this.beginStop(message.graceMs);
  }

  busiest(limit: number): TcpFlowSnapshot[] {
    return this.admission.busiest(this.flows.values(), limit);
  }

  private snapshot(): TcpCounters {
    return this.admission.snapshot(this.flows.values(), this.flows.size);
  }

  /** Something of the engine's own is due later: flows (idle timeout, bytes, connects), upstream sockets closing, an accept retry, a stop. */
  get timed(): boolean {
    return this.occupied > 0 || this.connector.orphaned > 0 || this.resumeAt !== 0 || this.stop.stopping;
  }

  /** Connections that count against the cap: flows, and connections sniffing for their name. */
  private get occupied(): number {
    return this.flows.size + this.sniffs.size;
  }

  /** The owner got the counters as they are now (only asked while nothing is timed, so the snapshot is small). */
  get countersReported(): boolean {
    return this.reported.current(this.snapshot());
  }

  /**
   * One loop turn: submit what is queued and wait (up to waitMs; up to IDLE_WAIT_MAX_MS when
   * nothing is timed and the owner has the counters) for completions, handle them, run timers.
   */
  turn(waitMs: number): boolean {
    // A sniff deadline due sooner than waitMs shortens the wait (flows are not delayed past it).
    const firstSniff = this.sniffDeadlines.values().next().value;
    this.ring.submit(1, firstSniff ? Math.max(0, Math.min(waitMs, firstSniff.deadline - this.now())) : turnWait(waitMs, this));
    const c = this.ring.completion;
    // Completions handled here queue new operations; they go with the next turn's enter.
    while (this.ring.next()) this.complete(c.kind, c.id, c.res, c.flags);
    const now = this.now();
    if (firstSniff) {
      for (const sniff of duePrefix(this.sniffDeadlines, now, (x) => x.deadline)) {
        this.sniffDeadlines.delete(sniff);
        this.relay.expireFirst(sniff);
      }
    }
    if (this.timers.scanDue(now)) this.scan(now);
    const events = this.admission.takeEvents();
    if (events) this.post({ kind: 'events', events });
    this.reported.postWhenDue(this.timers.countersDue(now), () => this.snapshot(), (counters) => this.post({ kind: 'counters', counters }), this.timed);
    return !this.finishStopIfDone(now);
  }

  private complete(kind: number, id: number, res: number, flags: number): void {
    switch (kind) {
      case Op.Accept:
        this.onAccept(id, res);
        return;
      case Op.Wake:
        this.libc.read(this.wakeFd, this.u64, 8);
        this.woken = true;
        if ((flags & U.IORING_CQE_F_MORE) === 0 && !this.stop.stopping) this.ring.pollMultishot(this.wakeFd, C.EPOLLIN, Op.Wake, 0);
        return;
      case Op.Cancel:
      case Op.Probe:
      case RelayOp.Cancel:
      case RelayOp.Finish:
        // Finish: a failed step of a FIN or an orderly close. The flow ends (or ended) anyway, as
        // when shutdown() and close() were synchronous calls whose results went unread.
        return;
    }
    if (RingConnector.quiet(kind)) return;
    const sniff = this.sniffs.get(id);
    if (sniff) {
      sniff.pending--;
      this.relay.complete(kind, sniff, res, flags);
      return;
    }
    const flow = this.flows.get(id);
    if (!flow || flow.closed) {
      // A flow reset before its operations completed: only a buffer it was lent needs a way back,
      // and an upstream socket kept for its setup chain a close.
      this.relay.giveBackFlags(flags, kind);
      this.connector.gone(kind, id);
      return;
    }
    if (this.connector.complete(kind, flow, res)) return;
    flow.pending--;
    if (!this.handshakes.complete(kind, flow, res, flags)) this.relay.complete(kind, flow, res, flags);
  }

  // ---- accepting ------------------------------------------------------------------------------

  /**
   * Keep ACCEPTS_PER_LISTENER single-shot accepts queued per listener while the flows are below
   * the cap; at the cap none is queued again, so new connections wait in the kernel backlog.
   */
  private armAccepts(): void {
    if (this.stop.stopping || this.resumeAt !== 0) return;
    if (this.occupied + this.parked.length >= this.config.maxConnections) {
      if (!this.capped) {
        this.capped = true;
        this.counters.acceptPauses++;
      }
      return;
    }
    for (const [i, l] of this.listeners.entries()) {
      for (let slot = l.freeSlots.pop(); slot !== undefined; slot = l.freeSlots.pop()) {
        const at = i * ACCEPTS_PER_LISTENER + slot;
        this.peers.writeUInt32LE(SOCKADDR_STORAGE_SIZE, this.peerLengthsAt + at * 4);
        const peer = { address: this.peersAddress + BigInt(at * SOCKADDR_STORAGE_SIZE), length: this.peersAddress + BigInt(this.peerLengthsAt + at * 4) };
        this.ring.accept(l.fd, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, Op.Accept, at, peer);
        l.inFlight++;
      }
    }
  }

  /** Cancel the accepts in flight (out of descriptors, or stopping); their CQEs say ECANCELED. */
  private cancelAccepts(): void {
    for (const [i, l] of this.listeners.entries()) {
      if (l.inFlight === 0) continue;
      for (let slot = 0; slot < ACCEPTS_PER_LISTENER; slot++) if (!l.freeSlots.includes(slot)) this.ring.cancel(Op.Accept, i * ACCEPTS_PER_LISTENER + slot, Op.Cancel);
    }
  }

  private onAccept(at: number, res: number): void {
    const listener = this.listeners[Math.floor(at / ACCEPTS_PER_LISTENER)];
    if (!listener) return;
    listener.inFlight--;
    listener.freeSlots.push(at % ACCEPTS_PER_LISTENER);
    if (res < 0) {
      const errno = errnoName(-res);
      if (res === -C.EMFILE || res === -C.ENFILE) {
        increment(this.counters.connectErrors, errno);
        if (this.resumeAt === 0) this.counters.acceptPauses++;
        this.resumeAt = this.now() + C.DESCRIPTOR_RETRY_MS;
        this.cancelAccepts();
      } else if (res !== -C.ECANCELED && res !== -C.ECONNABORTED && res !== -C.EAGAIN) {
        this.admission.emit({ type: 'error', code: errno, message: `tcp accept: ${errno}` });
      }
      this.armAccepts();
      return;
    }
    const cfd = res;
    if (this.stop.stopping) {
      this.api.resetClose(cfd);
      return;
    }
    // The kernel wrote the peer's address with the accept: the slot is free again only below.
    const client = this.acceptedPeer(at);
    const local = client && this.localEndpoint(cfd);
    const destination = local && this.endpoints.destination(local);
    if (!client || !destination) this.api.resetClose(cfd);
    else if (this.occupied >= this.config.maxConnections) this.parked.push({ listener, cfd, client, destination });
    else this.onAccepted(listener, cfd, client, destination);
    this.armAccepts();
  }

  private acceptedPeer(at: number): Endpoint | undefined {
    try {
      return this.endpoints.client(decodeSockaddr(this.peers, this.peers.readUInt32LE(this.peerLengthsAt + at * 4), at * SOCKADDR_STORAGE_SIZE));
    } catch {
      return undefined;
    }
  }

  private localEndpoint(fd: number): Endpoint | undefined {
    this.nameLength.writeUInt32LE(this.name.length, 0);
    if (this.libc.getsockname(fd, this.name, this.nameLength) !== 0) return undefined;
    return decodeSockaddr(this.name, this.nameLength.readUInt32LE(0));
  }

  private onAccepted(listener: { readonly family: C.Family; readonly port: number }, cfd: number, client: Endpoint, destination: Endpoint): void {
    const id = this.admission.admit(listener.port, client, destination, this.occupied);
    if (id === undefined) {
      this.api.resetClose(cfd);
      return;
    }
    const first = this.admission.firstDecision(client, destination);
    if (first !== 'sniff') {
      this.startFlow(listener, id, cfd, client, destination, first, undefined, newDirection());
      return;
    }
    // Its name could change its route: its first bytes are received and sniffed.
    const now = this.now();
    const sniff: Sniff = { id, cfd, ufd: -1, closed: false, up: newDirection(), down: newDirection(), lastActive: now, pending: 0, first: new FirstBytes(SNIFF_DECODER), listener, client, destination, deadline: now + this.sniffTimeoutMs };
    this.sniffs.set(id, sniff);
    this.sniffDeadlines.add(sniff);
    this.relay.recvFirst(sniff);
  }

  /** Sniffed (a name, none, its FIN, the timeout): its route decided, a flow starts with the bytes received held for upstream. */
  private onSniffed(sniff: Sniff, sniffed: SniffOutcome): void {
    this.sniffs.delete(sniff.id);
    this.sniffDeadlines.delete(sniff);
    increment(this.counters.sniffs, sniffed.outcome);
    const decision = this.admission.decide(sniff.client, sniff.destination, sniffed.name);
    const up = sniff.up;
    up.starved = false;
    this.startFlow(sniff.listener, sniff.id, sniff.cfd, sniff.client, sniff.destination, decision, sniffed.name, up);
    // A flow that did not start (a reject route, no upstream socket): the bytes it held go back.
    if (!this.flows.has(sniff.id)) this.relay.releaseHeld(sniff);
  }

  /** The flow takes its route's outbound; `up`: its client direction (holding the bytes sniffed, if any). */
  private startFlow(listener: { readonly family: C.Family; readonly port: number }, id: number, cfd: number, client: Endpoint, destination: Endpoint, decision: RouteDecision, name: string | undefined, up: RelayDirection): void {
    if (!this.admission.routed(id, client, destination, decision, name)) {
      this.api.resetClose(cfd);
      return;
    }
    this.counters.accepted++;
    let dscp: number | undefined;
    let ufd = -1;
    try {
      dscp = this.admission.flowDscp(cfd, listener.family);
      // An upstream proxy's socket is opened synchronously (the ring setup knows direct and transparent ones).
      if (!this.ringSetup.sockets || proxied(decision.outbound)) ufd = this.admission.openUpstream(cfd, listener.family, client, decision.outbound, dscp);
    } catch (error) {
      this.setupFailed(errnoOf(error), cfd);
      return;
    }
    const now = this.now();
    const outbound = decision.outbound;
    const sockaddr = encodeSockaddr(outbound.kind === 'socks5' || outbound.kind === 'http' ? outbound.proxy.endpoint : destination);
    const flow: UFlow = {
      id, client, destination, cfd, ufd, decision, sockaddr, dscp, portTaken: false, setupValues: undefined, chain: false, setupErrno: 0,
      connected: false, closed: false, up, down: newDirection(), started: now, lastActive: now, pending: 0, first: undefined, handshake: undefined, handshakeDeadline: 0,
    };
    this.flows.set(id, flow);
    if (ufd < 0) this.connector.open(flow);
    else this.connector.connectOpened(flow);
  }

  /** The upstream socket could not be opened: counted as a connect error, the client reset. */
  private setupFailed(errno: string, cfd: number): void {
    increment(this.counters.connectErrors, errno);
    if (errno === 'EMFILE' || errno === 'ENFILE') {
      if (this.resumeAt === 0) this.counters.acceptPauses++;
      this.resumeAt = this.now() + C.DESCRIPTOR_RETRY_MS;
      this.cancelAccepts();
    }
    this.api.resetClose(cfd);
  }

  /** A flow whose upstream socket failed before its connect began: gone without a close (as when opened synchronously). */
  private dropFlow(flow: UFlow, errno: string): void {
    flow.closed = true;
    this.flows.delete(flow.id);
    this.counters.active = this.flows.size;
    if (flow.ufd >= 0) this.libc.close(flow.ufd);
    this.setupFailed(errno, flow.cfd);
    this.admitParked();
  }

  // ---- flows ----------------------------------------------------------------------------------

  /** The connect completed (the setup's options all went, where the ring set them). */
  private onConnect(flow: UFlow, res: number): void {
    if (res < 0) {
      // The linked timeout cancels the connect: ECANCELED is the deadline passing.
      const reason = res === -C.ECANCELED || res === -C.ETIME ? 'connect-timeout' : errnoName(-res);
      increment(this.counters.connectErrors, reason);
      this.close(flow, reason);
      return;
    }
    const outbound = flow.decision.outbound;
    if (outbound.kind === 'socks5' || outbound.kind === 'http') {
      // The client is not read until the tunnel is open (its bytes wait in its socket).
      flow.handshakeDeadline = flow.started + this.config.connectTimeoutMs;
      this.handshaking.add(flow);
      this.handshakes.start(flow, createHandshake(outbound.proxy, flow.destination), flow.handshakeDeadline);
      return;
    }
    this.onTunnel(flow);
  }

  /** An upstream proxy's handshake ended: the tunnel is open (the relay starts), or the flow ends as a connect error. */
  private onHandshakeEnd(flow: UFlow, end: HandshakeEnd): void {
    this.handshaking.delete(flow);
    if (end.kind === 'failed') {
      increment(this.counters.connectErrors, end.errno ?? end.reason);
      this.close(flow, end.reason);
      return;
    }
    if (end.rest.length > 0) {
      flow.down.early = end.rest;
      flow.down.length = end.rest.length;
      flow.down.sent = 0;
      flow.down.bytes += end.rest.length;
    }
    this.onTunnel(flow);
  }

  /** Connected to the destination (directly, or through an upstream proxy's tunnel): relay. */
  private onTunnel(flow: UFlow): void {
    flow.connected = true;
    // TCP_NODELAY was set in the setup chain when the ring opened the socket.
    this.admission.connected(flow.id, flow.cfd, flow.ufd, this.ringSetup.sockets && !proxied(flow.decision.outbound));
    // A PROXY header (the outbound's proxyProtocol) goes first, before the client's bytes.
    const header = proxyHeaderFor(flow.decision.outbound, flow.client, flow.destination);
    if (header) this.relay.prependUp(flow, header);
    this.relay.start(flow, this.ringSetup.sockets && !proxied(flow.decision.outbound));
  }

  /**
   * End a flow. `lastFin`: an orderly end, the descriptor whose SO_LINGER goes off before it
   * closes (the other one's went off with its FIN). Through the ring when nothing of the flow is
   * in flight: SO_LINGER off, then both closes, in this order with the next submission.
   */
  private close(flow: UFlow, reason: string, lastFin?: number): void {
    if (flow.closed) return;
    flow.closed = true;
    flow.handshake = undefined;
    this.handshaking.delete(flow);
    const orphaned = this.connector.release(flow);
    this.relay.closeSockets(flow, flow.ufd >= 0 && !orphaned ? [flow.cfd, flow.ufd] : [flow.cfd], reason, lastFin);
    this.flows.delete(flow.id);
    this.admission.closed(flow, reason, this.flows.size);
    this.admitParked();
  }

  /** A place came free: a connection accepted at the cap takes it first; then accepting resumes. */
  private admitParked(): void {
    const next = this.parked.shift();
    if (next && !this.stop.stopping) this.onAccepted(next.listener, next.cfd, next.client, next.destination);
    else if (next) this.api.resetClose(next.cfd);
    if (this.occupied + this.parked.length < this.config.maxConnections) this.capped = false;
    this.armAccepts();
  }

  private scan(now: number): void {
    for (const flow of duePrefix(this.handshaking, now, (f) => f.handshakeDeadline)) {
      this.handshaking.delete(flow);
      increment(this.counters.connectErrors, 'connect-timeout');
      this.close(flow, 'connect-timeout');
    }
    if (this.resumeAt !== 0 && now >= this.resumeAt) {
      this.resumeAt = 0;
      this.armAccepts();
    }
    if (this.timers.idleDue(now)) {
      const idle = this.config.idleTimeoutMs;
      for (const flow of [...this.flows.values()]) if (flow.connected && now - flow.lastActive >= idle) this.close(flow, 'idle-timeout');
    }
  }

  // ---- stopping -------------------------------------------------------------------------------

  private beginStop(graceMs: number): void {
    if (!this.stop.begin(this.now(), graceMs, this.flows.size)) return;
    this.cancelAccepts();
    for (const p of this.parked.splice(0)) {
      increment(this.counters.closed, 'stopped');
      this.api.resetClose(p.cfd);
    }
    // Connections still waiting for their name never became flows: reset them.
    for (const sniff of [...this.sniffs.values()]) {
      this.sniffs.delete(sniff.id);
      this.sniffDeadlines.delete(sniff);
      sniff.closed = true;
      sniff.first = undefined;
      increment(this.counters.closed, 'stopped');
      this.relay.closeSockets(sniff, [sniff.cfd], 'stopped');
    }
    this.ring.submit(0, -1);
    for (const l of this.listeners) {
      this.ring.cancelFdNow(l.fd);
      this.libc.close(l.fd);
    }
  }

  private finishStopIfDone(now: number): boolean {
    if (!this.stop.due(now, this.flows.size)) return false;
    const forced = this.flows.size;
    for (const flow of [...this.flows.values()]) this.close(flow, 'stopped');
    const events = this.admission.takeEvents();
    if (events) this.post({ kind: 'events', events });
    const stopped: FromEngine = { kind: 'stopped', report: this.stop.report(forced), counters: this.snapshot() };
    // Closes queued through the ring go now, and sockets the ring opened for flows gone get closed:
    // all before 'stopped', after which the owner may end this thread at any moment.
    this.ring.submit(0, -1);
    const c = this.ring.completion;
    while (this.ring.next()) this.complete(c.kind, c.id, c.res, c.flags);
    this.ring.cancelFdNow(this.wakeFd);
    this.ring.close();
    this.relay.close();
    this.connector.closeOrphans();
    this.buffers.close();
    this.libc.close(this.wakeFd);
    this.post(stopped);
    return true;
  }
}

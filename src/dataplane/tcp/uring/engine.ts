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
 * Per-flow admission (refusal, route decision, upstream socket, accounting) is ../admission.ts,
 * shared with the splice engine.
 *
 * Not yet (the relay falls back to splice for them, saying why): routes by name (sniffing),
 * upstream proxies and PROXY protocol headers.
 */
import { errnoName } from '../../../core/errno.js';
import { errnoOf } from '../../../core/errors.js';
import * as C from '../../../core/net/constants.js';
import * as U from '../../../core/net/io-uring.js';
import { decodeSockaddr, encodeSockaddr, SOCKADDR_STORAGE_SIZE, type Endpoint } from '../../../core/net/sockaddr.js';
import type { RouteDecision } from '../../../core/route/table.js';
import { loadLibc, type Libc } from '../../../sys/libc.js';
import { IoUring, type BufferRing } from '../../../sys/io-uring.js';
import { SocketApi } from '../../../sys/socket.js';
import { FlowAdmission } from '../admission.js';
import { increment, type TcpCounters } from '../counters.js';
import type { TcpFlowSnapshot } from '../flows.js';
import type { FromEngine, SpliceEngineConfig, ToEngine } from '../splice/protocol.js';
import { GracefulStop } from '../splice/stop.js';
import { EngineTimers } from '../splice/timers.js';

const RING_ENTRIES = 4096;
/**
 * Accepts queued per listener: how many connections one loop turn can take from a backlog, and
 * how many can be accepted past the cap (they wait, parked, for a flow to end).
 */
const ACCEPTS_PER_LISTENER = 8;
/** Receive buffers: count (a power of two) and size. */
export const URING_BUFFERS = 1024;
export const URING_BUFFER_BYTES = 64 * 1024;
const BUFFER_GROUP = 1;
const ECANCELED = 125;
const ENOBUFS = 105;
const ETIME = 62;

/** Operation kinds in user_data. */
const Op = {
  Accept: 1,
  Connect: 2,
  ConnectTimeout: 3,
  RecvClient: 4,
  RecvUpstream: 5,
  SendUpstream: 6,
  SendClient: 7,
  Wake: 8,
  Cancel: 9,
} as const;

interface UDirection {
  /** The buffer being sent on (-1: none), its length and how much of it went. */
  bid: number;
  length: number;
  sent: number;
  eof: boolean;
  shut: boolean;
  bytes: number;
  /** Waiting for a buffer (the ring ran dry). */
  starved: boolean;
}

interface UFlow {
  readonly id: number;
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly cfd: number;
  readonly ufd: number;
  readonly decision: RouteDecision;
  /** The destination's sockaddr: the kernel reads it until the connect completes. */
  readonly sockaddr: Buffer;
  connected: boolean;
  closed: boolean;
  readonly up: UDirection;
  readonly down: UDirection;
  readonly started: number;
  lastActive: number;
  /** Operations on the flow's sockets not yet completed. */
  pending: number;
}

const newDirection = (): UDirection => ({ bid: -1, length: 0, sent: 0, eof: false, shut: false, bytes: 0, starved: false });

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
  private readonly listeners: { readonly fd: number; readonly family: C.Family; readonly port: number; inFlight: number }[];
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
  private readonly starved: UFlow[] = [];
  private readonly connectTimeout = Buffer.alloc(16);
  private readonly connectTimeoutAddress: bigint;
  private readonly linger = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
  private readonly noLinger = Buffer.alloc(8);
  private readonly u64 = Buffer.alloc(8);
  private readonly name = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
  private readonly nameLength = Buffer.alloc(4);

  constructor(
    private readonly config: SpliceEngineConfig,
    private readonly post: (message: FromEngine) => void,
    libc: Libc = loadLibc(),
    private readonly now: () => number = Date.now,
  ) {
    this.libc = libc;
    this.api = new SocketApi(libc);
    this.admission = new FlowAdmission(config, this.api, now);
    this.counters = this.admission.counters;
    this.timers = new EngineTimers(config.idleTimeoutMs, config.countersIntervalMs);
    this.ring = new IoUring(RING_ENTRIES);
    this.buffers = this.ring.bufferRing(BUFFER_GROUP, URING_BUFFERS, URING_BUFFER_BYTES);
    const ms = config.connectTimeoutMs;
    this.connectTimeout.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
    this.connectTimeout.writeBigInt64LE(BigInt((ms % 1000) * 1_000_000), 8);
    this.connectTimeoutAddress = libc.address(this.connectTimeout);
    this.wakeFd = libc.eventfd(0, C.EFD_NONBLOCK | C.EFD_CLOEXEC);
    if (this.wakeFd < 0) this.api.fail('eventfd');
    this.ring.pollMultishot(this.wakeFd, C.EPOLLIN, Op.Wake, 0);
    this.listeners = config.listeners.map((l) => ({ ...l, inFlight: 0 }));
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

  /** One loop turn: submit what is queued and wait (up to waitMs) for completions, handle them, run timers. */
  turn(waitMs: number): boolean {
    this.ring.submit(1, waitMs);
    const c = this.ring.completion;
    // Completions handled here queue new operations; they go with the next turn's enter.
    while (this.ring.next()) this.complete(c.kind, c.id, c.res, c.flags);
    const now = this.now();
    if (this.timers.scanDue(now)) this.scan(now);
    const events = this.admission.takeEvents();
    if (events) this.post({ kind: 'events', events });
    if (this.timers.countersDue(now)) this.post({ kind: 'counters', counters: this.snapshot() });
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
      case Op.ConnectTimeout:
      case Op.Cancel:
        return;
    }
    const flow = this.flows.get(id);
    if (!flow || flow.closed) {
      // A flow reset before its operations completed: only a buffer it was lent needs a way back.
      if (flags & U.IORING_CQE_F_BUFFER) this.giveBack(flags >>> U.IORING_CQE_BUFFER_SHIFT);
      return;
    }
    flow.pending--;
    switch (kind) {
      case Op.Connect:
        this.onConnect(flow, res);
        return;
      case Op.RecvClient:
        this.onRecv(flow, flow.up, 'client', res, flags);
        return;
      case Op.RecvUpstream:
        this.onRecv(flow, flow.down, 'upstream', res, flags);
        return;
      case Op.SendUpstream:
        this.onSent(flow, flow.up, 'upstream', res);
        return;
      case Op.SendClient:
        this.onSent(flow, flow.down, 'client', res);
        return;
    }
  }

  // ---- accepting ------------------------------------------------------------------------------

  /**
   * Keep ACCEPTS_PER_LISTENER single-shot accepts queued per listener while the flows are below
   * the cap; at the cap none is queued again, so new connections wait in the kernel backlog.
   */
  private armAccepts(): void {
    if (this.stop.stopping || this.resumeAt !== 0) return;
    if (this.flows.size + this.parked.length >= this.config.maxConnections) {
      if (!this.capped) {
        this.capped = true;
        this.counters.acceptPauses++;
      }
      return;
    }
    for (const [i, l] of this.listeners.entries()) {
      while (l.inFlight < ACCEPTS_PER_LISTENER) {
        this.ring.accept(l.fd, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, Op.Accept, i);
        l.inFlight++;
      }
    }
  }

  /** Cancel the accepts in flight (out of descriptors, or stopping); their CQEs say ECANCELED. */
  private cancelAccepts(): void {
    for (const [i, l] of this.listeners.entries()) if (l.inFlight > 0) this.ring.cancel(Op.Accept, i, Op.Cancel);
  }

  private onAccept(index: number, res: number): void {
    const listener = this.listeners[index];
    if (!listener) return;
    listener.inFlight--;
    if (res < 0) {
      const errno = errnoName(-res);
      if (res === -C.EMFILE || res === -C.ENFILE) {
        increment(this.counters.connectErrors, errno);
        if (this.resumeAt === 0) this.counters.acceptPauses++;
        this.resumeAt = this.now() + C.DESCRIPTOR_RETRY_MS;
        this.cancelAccepts();
      } else if (res !== -ECANCELED && res !== -C.ECONNABORTED && res !== -C.EAGAIN) {
        this.admission.emit({ type: 'error', code: errno, message: `tcp accept: ${errno}` });
      }
      this.armAccepts();
      return;
    }
    const cfd = res;
    if (this.stop.stopping) {
      this.reset(cfd);
      return;
    }
    const client = this.endpoint(cfd, 'getpeername');
    const destination = client && this.endpoint(cfd, 'getsockname');
    if (!client || !destination) this.reset(cfd);
    else if (this.flows.size >= this.config.maxConnections) this.parked.push({ listener, cfd, client, destination });
    else this.onAccepted(listener, cfd, client, destination);
    this.armAccepts();
  }

  private endpoint(fd: number, call: 'getpeername' | 'getsockname'): Endpoint | undefined {
    this.nameLength.writeUInt32LE(this.name.length, 0);
    if (this.libc[call](fd, this.name, this.nameLength) !== 0) return undefined;
    return decodeSockaddr(this.name, this.nameLength.readUInt32LE(0));
  }

  private onAccepted(listener: { readonly family: C.Family; readonly port: number }, cfd: number, client: Endpoint, destination: Endpoint): void {
    const id = this.admission.admit(listener.port, client, destination, this.flows.size);
    if (id === undefined) {
      this.reset(cfd);
      return;
    }
    const first = this.admission.firstDecision(client, destination);
    // The relay starts this engine only for routing without names (uringRoutingGap).
    const decision = first === 'sniff' ? this.admission.decide(client, destination) : first;
    if (!this.admission.routed(id, client, destination, decision)) {
      this.reset(cfd);
      return;
    }
    this.counters.accepted++;
    let ufd: number;
    try {
      ufd = this.admission.openUpstream(cfd, listener.family, client, decision.outbound);
    } catch (error) {
      const errno = errnoOf(error);
      increment(this.counters.connectErrors, errno);
      if (errno === 'EMFILE' || errno === 'ENFILE') {
        if (this.resumeAt === 0) this.counters.acceptPauses++;
        this.resumeAt = this.now() + C.DESCRIPTOR_RETRY_MS;
        this.cancelAccepts();
      }
      this.reset(cfd);
      return;
    }
    const now = this.now();
    const sockaddr = encodeSockaddr(destination);
    const flow: UFlow = { id, client, destination, cfd, ufd, decision, sockaddr, connected: false, closed: false, up: newDirection(), down: newDirection(), started: now, lastActive: now, pending: 1 };
    this.flows.set(id, flow);
    this.ring.connect(ufd, this.libc.address(sockaddr), sockaddr.length, Op.Connect, id, { at: this.connectTimeoutAddress, kind: Op.ConnectTimeout });
  }

  // ---- flows ----------------------------------------------------------------------------------

  private onConnect(flow: UFlow, res: number): void {
    if (res < 0) {
      // The linked timeout cancels the connect: ECANCELED is the deadline passing.
      const reason = res === -ECANCELED || res === -ETIME ? 'connect-timeout' : errnoName(-res);
      increment(this.counters.connectErrors, reason);
      this.close(flow, reason);
      return;
    }
    flow.connected = true;
    this.admission.connected(flow.id, flow.cfd, flow.ufd);
    this.recv(flow, 'client');
    this.recv(flow, 'upstream');
  }

  private recv(flow: UFlow, from: 'client' | 'upstream'): void {
    flow.pending++;
    if (from === 'client') this.ring.recvSelect(flow.cfd, BUFFER_GROUP, URING_BUFFER_BYTES, Op.RecvClient, flow.id);
    else this.ring.recvSelect(flow.ufd, BUFFER_GROUP, URING_BUFFER_BYTES, Op.RecvUpstream, flow.id);
  }

  private onRecv(flow: UFlow, d: UDirection, from: 'client' | 'upstream', res: number, flags: number): void {
    if (res > 0) {
      const bid = flags >>> U.IORING_CQE_BUFFER_SHIFT;
      this.buffers.taken();
      d.bid = bid;
      d.length = res;
      d.sent = 0;
      d.bytes += res;
      flow.lastActive = this.now();
      this.sendRest(flow, d, from === 'client' ? 'upstream' : 'client');
      return;
    }
    if (res === 0) {
      d.eof = true;
      this.passFin(flow, d, from === 'client' ? flow.ufd : flow.cfd);
      return;
    }
    if (res === -ENOBUFS) {
      // Every buffer is lent: this direction waits for one to come back.
      d.starved = true;
      this.starved.push(flow);
      return;
    }
    this.close(flow, `${from}-${errnoName(-res)}`);
  }

  private sendRest(flow: UFlow, d: UDirection, to: 'client' | 'upstream'): void {
    flow.pending++;
    const address = this.buffers.address(d.bid) + BigInt(d.sent);
    if (to === 'upstream') this.ring.send(flow.ufd, address, d.length - d.sent, 0, Op.SendUpstream, flow.id);
    else this.ring.send(flow.cfd, address, d.length - d.sent, 0, Op.SendClient, flow.id);
  }

  private onSent(flow: UFlow, d: UDirection, to: 'client' | 'upstream', res: number): void {
    if (res < 0) {
      this.close(flow, `${to}-${errnoName(-res)}`);
      return;
    }
    d.sent += res;
    if (d.sent < d.length) {
      this.sendRest(flow, d, to);
      return;
    }
    this.giveBack(d.bid);
    d.bid = -1;
    this.recv(flow, to === 'upstream' ? 'client' : 'upstream');
  }

  /** The source's FIN, after everything before it was sent: SHUT_WR on the sink, or the end. */
  private passFin(flow: UFlow, d: UDirection, sink: number): void {
    this.libc.setsockopt(sink, C.SOL_SOCKET, C.SO_LINGER, this.noLinger, 8);
    d.shut = true;
    const other = d === flow.up ? flow.down : flow.up;
    if (other.shut) {
      this.close(flow, 'done');
      return;
    }
    this.libc.shutdown(sink, C.SHUT_WR);
  }

  private giveBack(bid: number): void {
    this.buffers.giveBack(bid);
    // A direction that found the ring empty gets its recv again.
    while (this.starved.length > 0) {
      const flow = this.starved.shift();
      if (!flow || flow.closed) continue;
      for (const [d, from] of [[flow.up, 'client'], [flow.down, 'upstream']] as const) {
        if (!d.starved) continue;
        d.starved = false;
        this.recv(flow, from);
      }
      return;
    }
  }

  private reset(fd: number): void {
    this.libc.setsockopt(fd, C.SOL_SOCKET, C.SO_LINGER, this.linger, 8);
    this.libc.close(fd);
  }

  private close(flow: UFlow, reason: string): void {
    if (flow.closed) return;
    flow.closed = true;
    // Operations still pending hold the sockets: cancel them first, or close() would not close.
    if (flow.pending > 0) {
      this.ring.cancelFdNow(flow.cfd);
      this.ring.cancelFdNow(flow.ufd);
    }
    for (const fd of [flow.cfd, flow.ufd]) {
      if (reason === 'done') this.libc.close(fd);
      else this.reset(fd);
    }
    for (const d of [flow.up, flow.down]) {
      if (d.bid >= 0) this.giveBack(d.bid);
      d.bid = -1;
    }
    this.flows.delete(flow.id);
    this.admission.closed(flow, reason, this.flows.size);
    // A connection accepted at the cap takes the place first; then accepting resumes.
    const next = this.parked.shift();
    if (next && !this.stop.stopping) this.onAccepted(next.listener, next.cfd, next.client, next.destination);
    else if (next) this.reset(next.cfd);
    if (this.flows.size + this.parked.length < this.config.maxConnections) this.capped = false;
    this.armAccepts();
  }

  private scan(now: number): void {
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
      this.reset(p.cfd);
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
    this.post({ kind: 'stopped', report: this.stop.report(forced), counters: this.snapshot() });
    this.ring.cancelFdNow(this.wakeFd);
    this.ring.close();
    this.buffers.close();
    this.libc.close(this.wakeFd);
    return true;
  }
}

/**
 * Transparent UDP relay, main-thread side: opens the IP_TRANSPARENT + IP_RECVORIGDSTADDR listeners
 * (so address-in-use and privilege errors surface at start), runs the relay loop in a worker, and
 * reads its counters from shared memory at any time.
 *
 * The loop must never just stop: the kernel rules keep sending the listener's traffic here, so a
 * dead loop black-holes it. A loop that ends unexpectedly (it closes its sessions first when it
 * can) is started again on the same listeners, at most MAX_RESTARTS_PER_MINUTE times a minute;
 * past that the relay has failed for good and says so to its owner (deps.onFailure), which stops
 * and removes the rules.
 */
import { Worker } from 'node:worker_threads';
import { TproxyError } from '../../core/errors.js';
import type { Family } from '../../core/net/constants.js';
import { anyAddress, type Endpoint } from '../../core/net/sockaddr.js';
import { DescriptorBudget } from '../../sys/descriptor-budget.js';
import { releaseAbandonedRing } from '../../sys/io-uring.js';
import { Wakeup } from '../../sys/wakeup.js';
import { fileLimit, processDescriptorBudget } from '../../sys/limits.js';
import type { SocketApi } from '../../sys/socket.js';
import type { UdpEngineKind } from '../../sys/datagram-io.js';
import { resolveUdpEngine, udpEngineLine, type RunningUdpEngine } from './engines.js';
import type { EventSink, UpstreamMode } from '../events.js';
import { RestartWindow } from '../restart-window.js';
import type { SentHeaders } from '../headers.js';
import { createCounterBuffer, migrateCounters, routedLayoutOf, snapshotCounters, unionLayout, type UdpCounters, type UdpRoutedLayout } from './counters.js';
import type { RoutingUpdate } from '../routing.js';
import type { RoutingConfig } from '../../core/route/config.js';
import { carries } from '../../core/route/outbound.js';
import { CONTROL_SLOTS, LOOP_BUDGET_HELD, type UdpLoopMessage, type UdpMapping, type UdpSessionSnapshot, type UdpWorkerData, type UdpWorkerMessage } from './protocol.js';
import { reclaimLoopBudget } from './loop-budget.js';
import { LoopSockets } from './loop-sockets.js';
import { releaseHold, requestCrash, type UdpTestSeam } from './test-seam.js';

/** The largest UDP payload over IPv4 (65,535 - 20 - 8); IPv6 allows 20 bytes more. */
export const MAX_UDP_PAYLOAD_BYTES = 65_507;

export interface UdpRelayConfig {
  readonly families: readonly Family[];
  /** Listen address per family (absent: any address). */
  readonly addresses?: { readonly 4?: string; readonly 6?: string };
  readonly port: number;
  /** The one outbound of every session when there is no routing. */
  readonly upstream: UpstreamMode;
  /** Routes and outbounds: each session leaves the way its route says (absent: upstream for all). */
  readonly routing?: RoutingConfig;
  /** How long a flow whose QUIC ClientHello takes several datagrams waits for the rest; default 300. */
  readonly sniffTimeoutMs?: number;
  readonly upstreamMark: number;
  readonly mapping?: UdpMapping;
  /** Session open/close events; default true; switched later by setFlowEvents. */
  readonly flowEvents?: boolean;
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  readonly maxPeersPerSession?: number;
  /** Slot size of the receive buffers; default 65,535 (every UDP datagram, IPv4 and IPv6). */
  readonly maxDatagramBytes?: number;
  /** Datagrams per recvmmsg / sendmmsg; default 32. */
  readonly batchSize?: number;
  /** Receive buffer of each socket (SO_RCVBUFFORCE); default 1 MiB. Memory is used only while datagrams wait. */
  readonly receiveBufferBytes?: number;
  /** Tests only (test-seam.ts): deps.onTestSeamHold is called, releaseTestSeamHold() resumes. */
  readonly testSeam?: UdpTestSeam;
  /** DSCP and TTL of the datagrams sent both ways; absent: the kernel's defaults. */
  readonly headers?: SentHeaders;
  /** How datagrams move (sys/datagram-io.ts); default epoll. uring falls back to epoll where io_uring does not work, with a udp.engine event. */
  readonly engine?: UdpEngineKind;
}

export const MAX_RESTARTS_PER_MINUTE = 5;

export interface UdpRelayDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
  /** The process's descriptor budget (absent: one made for this relay alone). */
  readonly budget?: DescriptorBudget;
  /** The loop kept dying and is not started again: the relay black-holes its traffic. */
  readonly onFailure?: (error: TproxyError) => void;
  /** Tests only (test-seam.ts): the loop is holding between bind() and connect() of its first reply socket. */
  readonly onTestSeamHold?: () => void;
}

function validate(config: UdpRelayConfig): void {
  const bad = (field: string, why: string): never => {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `udp relay ${field}: ${why}`, { field });
  };
  if (!Number.isInteger(config.idleTimeoutMs) || config.idleTimeoutMs < 1) bad('idleTimeoutMs', `${config.idleTimeoutMs} must be a positive integer (milliseconds)`);
  if (!Number.isInteger(config.maxSessions) || config.maxSessions < 1) bad('maxSessions', `${config.maxSessions} must be a positive integer`);
  if (config.maxPeersPerSession !== undefined && (!Number.isInteger(config.maxPeersPerSession) || config.maxPeersPerSession < 1)) bad('maxPeersPerSession', `${config.maxPeersPerSession} must be a positive integer`);
  if (config.maxDatagramBytes !== undefined && (!Number.isInteger(config.maxDatagramBytes) || config.maxDatagramBytes < 512 || config.maxDatagramBytes > 65_535)) bad('maxDatagramBytes', `${config.maxDatagramBytes} must be from 512 to 65535`);
  if (config.receiveBufferBytes !== undefined && (!Number.isInteger(config.receiveBufferBytes) || config.receiveBufferBytes < 4096 || config.receiveBufferBytes > 1 << 30)) bad('receiveBufferBytes', `${config.receiveBufferBytes} must be from 4096 to 1 GiB`);
  const routing = config.routing;
  const udpOutbounds = routing ? [routing.defaultOutbound, ...routing.outbounds.filter((o) => routing.routes.some((r) => r.outbound === o.name && (r.protocols.length === 0 || r.protocols.includes('udp'))))] : [];
  for (const o of udpOutbounds) if (!carries(o, 'udp')) bad('routing', `outbound ${o.name} (${o.kind}) cannot carry UDP: route UDP to direct, transparent, a socks5 outbound without proxyProtocol, or reject`);
  if (config.batchSize !== undefined && (!Number.isInteger(config.batchSize) || config.batchSize < 1 || config.batchSize > 1024)) bad('batchSize', `${config.batchSize} must be from 1 to 1024`);
}

export class UdpRelay {
  private worker: Worker | undefined;
  /** Shared with the loop: stop flag, test-seam hold, flow events, test-seam crash, budget entries held (see UdpWorkerData.control). */
  private readonly control = new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT);
  /**
   * The routing and counters the loop uses now (and a restarted loop starts with): a reload's
   * routing is taken over once the loop confirms it moved its counts to the new buffer.
   */
  private routing: RoutingConfig;
  private layout: UdpRoutedLayout;
  private counterBuffer: SharedArrayBuffer;
  private counterSlots: Float64Array;
  /** What the loop starts with (restarts included); set by start(). */
  private data: UdpWorkerData | undefined;
  /** Routing swaps the loop has not confirmed yet, by requestId, in the order they were sent. */
  private readonly swaps = new Map<number, { readonly routing: RoutingConfig; readonly sniffTimeoutMs: number; readonly layout: UdpRoutedLayout; readonly buffer: SharedArrayBuffer; readonly settle: (error?: Error) => void }>();
  private nextRequest = 1;
  /** Session requests (snapshot, close) the loop has not answered yet, by requestId. */
  private readonly asks = new Map<number, (answer: UdpWorkerMessage | undefined) => void>();
  private listenerFds: number[] = [];
  private exited: Promise<void> = Promise.resolve();
  private readonly budget: DescriptorBudget;
  private stopping = false;
  private readonly restartWindow = new RestartWindow(MAX_RESTARTS_PER_MINUTE);
  private restartCount = 0;
  /** The relay loop's thread is up and answering (false between its unexpected end and its restart). */
  private loopRunning = false;
  /** The sockets the loop holds (loop-sockets.ts), closed here when it dies holding any; made at the first start. */
  private loopSockets: LoopSockets | undefined;
  /** Ends the loop's wait after each message and to stop it (an idle loop blocks up to IDLE_WAIT_MAX_MS); restarted loops share it. */
  private wakeup: Wakeup | undefined;

  constructor(
    private readonly config: UdpRelayConfig,
    private readonly deps: UdpRelayDeps,
  ) {
    validate(config);
    this.routing = config.routing ?? { listener: 'main', defaultOutbound: { name: config.upstream, kind: config.upstream }, outbounds: [], lists: [], routes: [] };
    this.layout = routedLayoutOf(this.routing);
    this.counterBuffer = createCounterBuffer(this.layout);
    this.counterSlots = new Float64Array(this.counterBuffer);
    this.budget = deps.budget ?? processDescriptorBudget();
    this.setFlowEvents(config.flowEvents ?? true);
  }

  /** Whether the relay loop runs now: false while a loop that ended is waiting to be started again, or for good. */
  running(): boolean {
    return this.loopRunning;
  }

  /** Loops started to replace one that ended unexpectedly. */
  restarts(): number {
    return this.restartCount;
  }

  /** Report sessions opened and closed from now on, or stop reporting them; sessions go on either way. */
  setFlowEvents(on: boolean): void {
    Atomics.store(new Int32Array(this.control), 2, on ? 1 : 0);
  }

  private receiveBufferBytes(): number {
    return this.config.receiveBufferBytes ?? 1 << 20;
  }

  /** Sessions, datagrams and bytes each way, errors by reason: a plain-object snapshot. */
  counters(): UdpCounters {
    return snapshotCounters(this.counterSlots, this.layout);
  }

  async start(): Promise<Endpoint[]> {
    const { sockets } = this.deps;
    const listeners: UdpWorkerData['listeners'][number][] = [];
    const locals: Endpoint[] = [];
    try {
      for (const family of this.config.families) {
        const fd = sockets.open({ family, transport: 'udp', transparent: true, reuseAddress: true, recvOriginalDestination: true, receiveBufferBytes: this.receiveBufferBytes(), recvDscp: this.config.headers?.dscp === 'copy' });
        this.listenerFds.push(fd);
        sockets.bind(fd, { family, address: this.config.addresses?.[family] ?? anyAddress(family), port: this.config.port });
        listeners.push({ fd, family, port: this.config.port });
        locals.push(sockets.localEndpoint(fd));
      }
    } catch (error) {
      this.closeListeners();
      throw error;
    }
    this.stopping = false;
    this.loopSockets ??= LoopSockets.create(fileLimit().soft);
    try {
      this.wakeup ??= this.createWakeup();
    } catch (error) {
      this.closeListeners();
      throw error;
    }
    const data: UdpWorkerData = {
      listeners,
      routing: this.routing,
      sniffTimeoutMs: this.config.sniffTimeoutMs ?? 300,
      upstreamMark: this.config.upstreamMark,
      mapping: this.config.mapping ?? 'endpoint-dependent',
      idleTimeoutMs: this.config.idleTimeoutMs,
      maxSessions: this.config.maxSessions,
      maxPeersPerSession: this.config.maxPeersPerSession ?? 256,
      maxDatagramBytes: this.config.maxDatagramBytes ?? 65_535,
      batchSize: this.config.batchSize ?? 32,
      receiveBufferBytes: this.receiveBufferBytes(),
      control: this.control,
      counters: this.counterBuffer,
      budget: this.budget.buffer,
      openSockets: this.loopSockets.buffer,
      wakeFd: this.wakeup.fd,
      ...(this.config.testSeam ? { testSeam: this.config.testSeam } : {}),
      headers: this.config.headers ?? {},
      engine: this.engine(),
    };
    this.data = data;
    try {
      await this.startLoop(data, true);
    } catch (error) {
      await this.stop(0);
      throw error;
    }
    for (const local of locals) this.deps.emit({ type: 'listening', transport: 'udp', family: local.family, local });
    return locals;
  }

  /** Run the loop in a worker thread; resolves once it is ready. Its unexpected end restarts it. */
  private startLoop(data: UdpWorkerData, initial: boolean): Promise<void> {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
    this.worker = worker;
    this.exited = new Promise((resolve) =>
      worker.once('exit', () => {
        this.reclaim();
        resolve();
      }),
    );
    let reason: string | undefined;
    let code: TproxyError['code'] = 'ERR_SYSCALL';
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: UdpWorkerMessage) => {
        switch (message.kind) {
          case 'ready':
            ready = true;
            if (this.worker === worker) this.loopRunning = true;
            this.engineRuns(message.engine);
            resolve();
            break;
          case 'events':
            for (const event of message.events) this.deps.emit(event);
            break;
          case 'fatal':
            reason = message.message;
            code = message.code as TproxyError['code'];
            void worker.terminate();
            break;
          case 'stopped':
            void worker.terminate();
            break;
          case 'test-seam.held':
            this.deps.onTestSeamHold?.();
            break;
          case 'routing':
            this.swapped(message.requestId, message.error);
            break;
          case 'sessions':
          case 'close-session':
            this.asks.get(message.requestId)?.(message);
            break;
        }
      });
      worker.once('error', (error) => {
        reason ??= `${error.name}: ${error.message}`;
      });
      worker.once('exit', (exitCode) => {
        if (this.worker === worker) this.loopRunning = false;
        // Swaps it never answered: nothing writes the counters now, so they are moved here.
        for (const requestId of [...this.swaps.keys()]) this.swapped(requestId, undefined, true);
        // Its sessions ended with it: nothing to list or close.
        for (const answer of [...this.asks.values()]) answer(undefined);
        if (this.worker !== worker || this.stopping) return;
        const error = new TproxyError(code, `udp relay loop stopped: ${reason ?? `its thread exited with code ${exitCode}`}`);
        this.deps.emit({ type: 'error', code: error.code, message: error.message });
        if (!ready) reject(error);
        if (ready || !initial) this.loopEnded(error);
      });
    });
  }

  /** Start the loop again, unless it keeps dying: then the relay has failed for good. */
  private loopEnded(error: TproxyError): void {
    if (!this.restartWindow.allow()) {
      this.worker = undefined;
      this.deps.emit({ type: 'error', code: error.code, message: `udp relay loop on port ${this.config.port} ended ${MAX_RESTARTS_PER_MINUTE + 1} times within a minute: not started again` });
      this.deps.onFailure?.(error);
      return;
    }
    this.restartCount++;
    setTimeout(() => {
      if (this.stopping) return;
      if (!this.data) return;
      this.startLoop(this.data, false).then(
        () => this.deps.emit({ type: 'udp.restart', port: this.config.port, restarts: this.restartCount }),
        () => undefined, // its exit was reported and handled like the first one's
      );
    }, this.restartWindow.backoffMs()).unref();
  }

  /** The `limit` busiest sessions in progress (bytes both ways, counted now); none when no loop runs. */
  async sessions(limit: number, timeoutMs = 5000): Promise<readonly UdpSessionSnapshot[]> {
    const answer = await this.ask((requestId) => ({ kind: 'sessions', requestId, limit }), timeoutMs);
    return answer?.kind === 'sessions' ? answer.sessions : [];
  }

  /** End session `id` as an operator (reported closed as closed-by-operator, counted); false when it is not in progress. */
  async closeSession(id: number, timeoutMs = 5000): Promise<boolean> {
    const answer = await this.ask((requestId) => ({ kind: 'close-session', requestId, id }), timeoutMs);
    return answer?.kind === 'close-session' && answer.closed;
  }

  /** One request to the loop; undefined when no loop runs or it ended before answering. */
  private ask(message: (requestId: number) => UdpLoopMessage, timeoutMs: number): Promise<UdpWorkerMessage | undefined> {
    const worker = this.worker;
    if (!worker || !this.loopRunning) return Promise.resolve(undefined);
    const requestId = this.nextRequest++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.asks.delete(requestId);
        reject(new TproxyError('ERR_SYSCALL', `udp relay on port ${this.config.port}: the loop did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.asks.set(requestId, (answer) => {
        clearTimeout(timer);
        this.asks.delete(requestId);
        resolve(answer);
      });
      this.tell(worker, message(requestId));
    });
  }

  /**
   * A reload's routing: new flows take it, sessions in progress keep their route and outbound (and
   * their sockets). The routed counters continue: the loop copies them into a buffer with the new
   * names added and counts there from then on. Rejects, with the routing in force unchanged, when
   * the relay cannot carry the new routing or the loop refuses it, or gives no answer within timeoutMs.
   */
  setRouting(update: RoutingUpdate, timeoutMs = 10_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      validate({ ...this.config, routing: update.routing }); // a throw here rejects
      const layout = unionLayout(this.layout, routedLayoutOf(update.routing));
      const buffer = createCounterBuffer(layout);
      const requestId = this.nextRequest++;
      const timer = setTimeout(() => reject(new TproxyError('ERR_SYSCALL', `udp relay on port ${this.config.port}: the loop did not take the new routing within ${timeoutMs} ms`)), timeoutMs);
      this.swaps.set(requestId, {
        routing: update.routing,
        sniffTimeoutMs: update.sniffTimeoutMs,
        layout,
        buffer,
        settle: (error) => {
          clearTimeout(timer);
          if (error) reject(error);
          else resolve();
        },
      });
      const worker = this.worker;
      if (worker) this.tell(worker, { kind: 'routing', requestId, routing: update.routing, sniffTimeoutMs: update.sniffTimeoutMs, layout, counters: buffer });
      else this.swapped(requestId, undefined, true);
    });
  }

  /**
   * The loop answered a routing swap (or, byHand, no loop runs to answer): from now on the counters
   * are read from its buffer, and a restarted loop starts with its routing.
   */
  private swapped(requestId: number, error: string | undefined, byHand = false): void {
    const swap = this.swaps.get(requestId);
    if (!swap) return;
    this.swaps.delete(requestId);
    if (error !== undefined) {
      swap.settle(new TproxyError('ERR_INVALID_ARGUMENT', `udp relay on port ${this.config.port}: the new routing was refused: ${error}`));
      return;
    }
    if (byHand) migrateCounters(this.counterSlots, this.layout, new Float64Array(swap.buffer), swap.layout);
    this.routing = swap.routing;
    this.layout = swap.layout;
    this.counterBuffer = swap.buffer;
    this.counterSlots = new Float64Array(swap.buffer);
    if (this.data) this.data = { ...this.data, routing: swap.routing, sniffTimeoutMs: swap.sniffTimeoutMs, layout: swap.layout, counters: swap.buffer };
    swap.settle();
  }

  /**
   * Tests only (test-seam.ts): the loop's thread throws at its next turn, as an unexpected error in
   * it would, so a test can see the restart path (sessions closed, the loop started again after the
   * backoff, and past MAX_RESTARTS_PER_MINUTE deps.onFailure) without a real fault.
   */
  testSeamCrashLoop(): void {
    requestCrash(new Int32Array(this.control));
    this.wakeup?.signal();
  }

  /** A message to the loop, and its wake-up: an idle loop waits in epoll_wait up to IDLE_WAIT_MAX_MS. */
  private tell(worker: Worker, message: UdpLoopMessage): void {
    worker.postMessage(message);
    this.wakeup?.signal();
  }

  /** Tests only (test-seam.ts): let a held loop go on. */
  releaseTestSeamHold(): void {
    releaseHold(new Int32Array(this.control));
  }

  /** Stop the loop (sessions closed and reported), report the final counters, close the listeners. */
  async stop(timeoutMs = 2000): Promise<void> {
    this.stopping = true;
    this.loopRunning = false;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) {
      Atomics.store(new Int32Array(this.control), 0, 1);
      releaseHold(new Int32Array(this.control));
      this.wakeup?.signal();
      const timer = setTimeout(() => void worker.terminate(), timeoutMs);
      await this.exited;
      clearTimeout(timer);
      this.deps.emit({ type: 'udp.stats', counters: this.counters() });
    }
    // No thread watches it any more (a restart waiting for its backoff sees stopping and starts none).
    if (this.wakeup) {
      this.wakeup.close();
      this.budget.release('udp');
      this.wakeup = undefined;
    }
    this.closeListeners();
  }

  /**
   * The loop's thread exited: the sockets it left open are closed and what it still held of the
   * budget goes back (nothing after an orderly shutdown; a thread terminated after the stop
   * timeout, or whose shutdown threw, left both), before a restarted loop or a later start takes
   * any. With uring its ring is torn down too (unmapped and closed, with the epoll it polled): the
   * ring's requests hold the sockets, which would otherwise stay alive in the kernel, taking their
   * flows' datagrams, until the process exits. The epoll engine's epoll and raw reply sockets are
   * not known here: they stay open (no socket is kept alive by them), their entries given back.
   */
  private reclaim(): void {
    let sockets = 0;
    for (const fd of this.loopSockets?.take() ?? []) {
      try {
        this.deps.sockets.close(fd);
        sockets++;
      } catch {
        // already closed
      }
    }
    let engineDescriptors = 0;
    let engineErrors: string[] = [];
    const ring = this.loopSockets?.takeRing();
    if (ring) {
      engineErrors = releaseAbandonedRing(ring.ring);
      engineDescriptors++;
      try {
        this.deps.sockets.close(ring.epollFd);
        engineDescriptors++;
      } catch (error) {
        engineErrors.push(`close(epoll): ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    const descriptors = reclaimLoopBudget(this.budget, new Int32Array(this.control), LOOP_BUDGET_HELD);
    if (descriptors > 0 || sockets > 0 || ring) {
      this.deps.emit({ type: 'udp.loop.reclaimed', port: this.config.port, descriptors, sockets, ...(ring ? { engineDescriptors } : {}), ...(engineErrors.length > 0 ? { engineErrors } : {}) });
    }
  }

  /** The loop's wake-up eventfd, its descriptor taken from the budget (the loop takes its engine's own: DATAGRAM_IO_DESCRIPTORS). */
  private createWakeup(): Wakeup {
    if (!this.budget.acquire('udp')) {
      throw new TproxyError('ERR_RESOURCE_EXHAUSTED', `udp relay on port ${this.config.port}: the descriptor budget has no room for the loop's wake-up eventfd (${this.budget.snapshot().capacity} in all): raise the descriptor limit (LimitNOFILE= in the systemd unit, ulimit -n)`, { errno: 'EMFILE' });
    }
    try {
      return Wakeup.create();
    } catch (error) {
      this.budget.release('udp');
      throw error;
    }
  }

  private resolvedEngine: { readonly engine: UdpEngineKind; readonly why: string | undefined } | undefined;
  /** The udp.engine line last logged (a restarted loop on the same engine logs none). */
  private engineLogged: string | undefined;

  /** The engine the loop is given (resolved once: a restarted loop keeps it); its line waits for the loop's answer (engineRuns). */
  private engine(): UdpEngineKind {
    this.resolvedEngine ??= resolveUdpEngine(this.config.engine ?? 'epoll');
    return this.resolvedEngine.engine;
  }

  /** One udp.engine line when uring was asked for: the engine the loop opened, and why. */
  private engineRuns(running: RunningUdpEngine): void {
    if (!this.resolvedEngine) return;
    const line = udpEngineLine(this.config.engine ?? 'epoll', this.resolvedEngine, running);
    if (!line || JSON.stringify(line) === this.engineLogged) return;
    this.engineLogged = JSON.stringify(line);
    this.deps.emit(line);
  }

  private closeListeners(): void {
    for (const fd of this.listenerFds) {
      try {
        this.deps.sockets.close(fd);
      } catch {
        // already closed
      }
    }
    this.listenerFds = [];
  }
}

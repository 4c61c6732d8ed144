/**
 * SpliceRelay: the owner-thread side of the splice engine. Opens the transparent listeners here
 * (so address-in-use and privilege errors surface at start), then hands them to the engine thread.
 */
import { Worker } from 'node:worker_threads';
import { TproxyError, type TproxyErrorCode } from '../../../core/errors.js';
import type { Family } from '../../../core/net/constants.js';
import { anyAddress, type Endpoint } from '../../../core/net/sockaddr.js';
import { loadLibc } from '../../../sys/libc.js';
import type { SocketApi } from '../../../sys/socket.js';
import type { EventSink } from '../../events.js';
import { emptyTcpCounters, type TcpCounters } from '../counters.js';
import type { TcpSnapshot } from '../flows.js';
import { listenerHeaders, type StopReport, type TcpRelayConfig } from '../relay.js';
import type { RoutingUpdate } from '../../routing.js';
import type { FromEngine, SpliceEngineConfig, ToEngine } from './protocol.js';
import { ENGINE_THREAD_LIMITS } from './thread-limits.js';

export interface SpliceRelayDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
  readonly localAddresses: () => ReadonlySet<string>;
}

export class SpliceRelay {
  counters: TcpCounters = emptyTcpCounters();
  private worker: Worker | undefined;
  private wakeFd = -1;
  private stopRequested = false;
  private stopped: Promise<StopReport> | undefined;
  private resolveStopped: ((report: StopReport) => void) | undefined;
  private refresh: NodeJS.Timeout | undefined;
  private readonly wake = Buffer.alloc(8);
  private nextRequest = 1;
  private readonly snapshotRequests = new Map<number, (snapshot: TcpSnapshot) => void>();
  private readonly routingRequests = new Map<number, () => void>();
  private readonly closeRequests = new Map<number, (closed: boolean) => void>();
  /** Shared with the engine thread (SpliceEngineConfig.flowEvents). */
  private readonly flowEvents = new SharedArrayBuffer(4);

  constructor(
    private readonly config: Omit<TcpRelayConfig, 'family'> & { readonly families: readonly Family[]; readonly pipeBytes: number; readonly maxPipes?: number; readonly engine?: 'splice' | 'uring' },
    private readonly deps: SpliceRelayDeps,
  ) {
    this.wake.writeBigUInt64LE(1n, 0);
    this.setFlowEvents(config.flowEvents);
  }

  /** Report every flow from now on, or stop reporting; flows in progress go on either way. */
  setFlowEvents(on: boolean): void {
    Atomics.store(new Int32Array(this.flowEvents), 0, on ? 1 : 0);
  }

  get activeFlows(): number {
    return this.counters.active;
  }

  async start(): Promise<Endpoint[]> {
    const { sockets } = this.deps;
    const listeners: SpliceEngineConfig['listeners'][number][] = [];
    const locals: Endpoint[] = [];
    try {
      for (const family of this.config.families) {
        const fd = sockets.open({ family, transport: 'tcp', transparent: true, reuseAddress: true, reusePort: this.config.reusePort, ...listenerHeaders(this.config.headers ?? {}) });
        listeners.push({ fd, family, port: this.config.port });
        // Accepted sockets inherit it: a crashed worker resets its clients (see engine.ts).
        sockets.setResetOnClose(fd, true);
        sockets.bind(fd, { family, address: this.config.addresses?.[family] ?? anyAddress(family), port: this.config.port });
        sockets.listen(fd, this.config.backlog);
        locals.push(sockets.localEndpoint(fd));
      }
    } catch (error) {
      for (const l of listeners) sockets.close(l.fd);
      throw error;
    }
    const engine: SpliceEngineConfig = {
      listeners,
      routing: this.config.routing,
      sniffTimeoutMs: this.config.sniffTimeoutMs,
      upstreamMark: this.config.upstreamMark,
      connectTimeoutMs: this.config.connectTimeoutMs,
      idleTimeoutMs: this.config.idleTimeoutMs,
      keepAliveMs: this.config.keepAliveMs,
      maxConnections: this.config.maxConnections,
      flowEvents: this.flowEvents,
      pipeBytes: this.config.pipeBytes,
      ...(this.config.maxPipes === undefined ? {} : { maxPipes: this.config.maxPipes }),
      localAddresses: [...this.deps.localAddresses()],
      countersIntervalMs: 1000,
      headers: this.config.headers ?? {},
    };
    // Both engines of this thread protocol: splice (epoll) and uring (io_uring).
    const entry = this.config.engine === 'uring' ? '../uring/thread.js' : './thread.js';
    const worker = new Worker(new URL(entry, import.meta.url), { workerData: { spliceEngine: engine }, resourceLimits: ENGINE_THREAD_LIMITS });
    this.worker = worker;
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: FromEngine) => {
        switch (m.kind) {
          case 'ready':
            this.wakeFd = m.wakeFd;
            resolve();
            break;
          case 'events':
            for (const e of m.events) this.deps.emit(e);
            break;
          case 'counters':
            this.counters = m.counters;
            break;
          case 'snapshot':
            this.counters = m.counters;
            this.snapshotRequests.get(m.requestId)?.(m);
            break;
          case 'routing':
            this.routingRequests.get(m.requestId)?.();
            break;
          case 'close-flow':
            this.closeRequests.get(m.requestId)?.(m.closed);
            break;
          case 'stopped':
            this.counters = m.counters;
            this.resolveStopped?.(m.report);
            break;
          case 'fatal': {
            const error = new TproxyError(m.code as TproxyErrorCode, `tcp ${this.config.engine ?? 'splice'} engine: ${m.message}`);
            this.deps.emit({ type: 'error', code: m.code, message: error.message });
            reject(error);
            break;
          }
        }
      });
      worker.once('error', (error) => reject(new TproxyError('ERR_SYSCALL', `tcp ${this.config.engine ?? 'splice'} engine failed: ${error.message}`, {}, { cause: error })));
    });
    // Host addresses change (DHCP, hotplug): the loop/direct-connection checks must follow.
    this.refresh = setInterval(() => this.send({ kind: 'local-addresses', addresses: [...this.deps.localAddresses()] }), 5000);
    this.refresh.unref();
    for (const local of locals) this.deps.emit({ type: 'listening', transport: 'tcp', family: local.family, local });
    return locals;
  }

  /**
   * Counters and busiest flows now, asked of the engine thread; if it does not answer within
   * timeoutMs, the counters it last reported and no flows.
   */
  snapshot(limit: number, timeoutMs = 2000): Promise<TcpSnapshot> {
    if (!this.worker) return Promise.resolve({ counters: this.counters, flows: [] });
    const requestId = this.nextRequest++;
    return new Promise((resolve) => {
      const done = (snapshot: TcpSnapshot): void => {
        clearTimeout(timer);
        this.snapshotRequests.delete(requestId);
        resolve({ counters: snapshot.counters, flows: snapshot.flows });
      };
      const timer = setTimeout(() => done({ counters: this.counters, flows: [] }), timeoutMs);
      this.snapshotRequests.set(requestId, done);
      this.send({ kind: 'snapshot', requestId, limit });
    });
  }

  /**
   * New flows take these routes from now on; flows in progress keep theirs. Resolves once the
   * engine thread has them in force, or after timeoutMs (it takes them with its next messages).
   */
  setRouting(update: RoutingUpdate, timeoutMs = 2000): Promise<void> {
    if (!this.worker) return Promise.resolve();
    const requestId = this.nextRequest++;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.routingRequests.delete(requestId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.routingRequests.set(requestId, done);
      this.send({ kind: 'routing', requestId, routing: update.routing, sniffTimeoutMs: update.sniffTimeoutMs });
    });
  }

  /** Reset flow `id` in the engine thread; false when it is not in progress (or no answer within timeoutMs). */
  closeFlow(id: number, reason: string, timeoutMs = 2000): Promise<boolean> {
    if (!this.worker) return Promise.resolve(false);
    const requestId = this.nextRequest++;
    return new Promise((resolve) => {
      const done = (closed: boolean): void => {
        clearTimeout(timer);
        this.closeRequests.delete(requestId);
        resolve(closed);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.closeRequests.set(requestId, done);
      this.send({ kind: 'close-flow', requestId, id, reason });
    });
  }

  private send(message: ToEngine): void {
    if (!this.worker) return;
    this.worker.postMessage(message);
    loadLibc().write(this.wakeFd, this.wake, 8);
  }

  async stop(graceMs = 0): Promise<StopReport> {
    clearInterval(this.refresh);
    const worker = this.worker;
    if (!worker || !this.stopped) return { completed: 0, forced: 0 };
    // Asked again while draining (a shorter grace): the stopping loop turns every 20 ms and reads
    // messages without a wake-up, and its eventfd may already be closed, so post only.
    if (this.stopRequested) worker.postMessage({ kind: 'stop', graceMs } satisfies ToEngine);
    else this.send({ kind: 'stop', graceMs });
    this.stopRequested = true;
    const timer = setTimeout(() => void worker.terminate(), graceMs + 5000);
    const report = await Promise.race([this.stopped, new Promise<StopReport>((resolve) => worker.once('exit', () => resolve({ completed: 0, forced: this.counters.active })))]);
    clearTimeout(timer);
    await worker.terminate();
    this.worker = undefined;
    return report;
  }
}

/**
 * An mmproxy TCP listener on the splice engine (the owner side; the engine is splice-engine.ts,
 * one per thread). Its listening sockets are opened here, so a taken port or a missing privilege
 * fails the start or the reload; its engine threads (one per TCP worker, so every core takes
 * connections) all watch every listening socket (EPOLLEXCLUSIVE: a connection wakes one of them).
 *
 * Threads of one process share descriptors, which is what a reload needs: a listening socket that
 * stays is handed from the old entry to the new one by number (release, then adopt), never closed
 * and never bound twice, and the old entry's threads drain their flows while the new ones accept.
 *
 * Counters: each thread reports its own, cumulative; what changed since its last report is added
 * to `counters`, which a reload passes on to the entry of the same name (both add to it while the
 * old one drains, as on the stream engine).
 */
import { Worker } from 'node:worker_threads';
import { errnoOf, TproxyError, type TproxyErrorCode } from '../../core/errors.js';
import * as C from '../../core/net/constants.js';
import { AllowedSources } from './allowed-sources.js';
import type { Endpoint } from '../../core/net/sockaddr.js';
import { loadLibc } from '../../sys/libc.js';
import { count, emptyMmproxyCounters, type MmproxyCounters } from './counters.js';
import type { FromMmproxyEngine, MmproxyEngineConfig, ToMmproxyEngine } from './splice-protocol.js';
import { endpointKey, type HandedListener, type MmproxyTcpConfig, type MmproxyTcpDeps } from './tcp-relay.js';

/** The backlog of each listening socket (Node's default for net servers). */
const BACKLOG = 511;
/** Bytes each direction's pipe may hold: the TPROXY splice engine's. */
const PIPE_BYTES = 256 * 1024;
/** How long a thread may take to answer a release or to stop before it is terminated. */
const ANSWER_MS = 5000;

interface EngineThread {
  readonly worker: Worker;
  wakeFd: number;
  /** Its last cumulative counters (what was already added to the listener's). */
  last: MmproxyCounters;
  connections: number;
  stopped: boolean;
  readonly waiting: Map<number, () => void>;
  readonly exited: Promise<void>;
}

export interface MmproxySpliceDeps extends MmproxyTcpDeps {
  /** Engine threads per listener. */
  readonly threads: number;
  /** The engine each thread runs: splice (epoll, the default) or uring (io_uring: uring-engine.ts). */
  readonly engine?: 'splice' | 'uring';
}

export class MmproxySpliceRelay {
  readonly counters: MmproxyCounters;
  /** Listening sockets by endpointKey. */
  private readonly fds = new Map<string, number>();
  private threads: EngineThread[] = [];
  private nextRequest = 1;
  private readonly wake = Buffer.alloc(8);
  private idle: (() => void) | undefined;
  /** Shared with the engine threads (MmproxyEngineConfig.accepting). */
  private readonly accepting = new SharedArrayBuffer(4);
  /** Shared with the engine threads (MmproxyEngineConfig.flowEvents). */
  private readonly flowEvents = new SharedArrayBuffer(4);

  /** `counters`: those of the listener this one replaces on a reload (they go on counting). */
  constructor(
    private readonly config: MmproxyTcpConfig,
    private readonly deps: MmproxySpliceDeps,
    counters?: MmproxyCounters,
  ) {
    // Checked here (the threads parse it again): a bad prefix refuses the start or the reload before anything is bound.
    new AllowedSources(config.allowedSources, `mmproxy ${config.name}: allowedSources`);
    this.counters = counters ?? emptyMmproxyCounters();
    this.wake.writeBigUInt64LE(1n, 0);
    Atomics.store(new Int32Array(this.accepting), 0, 1);
    this.setFlowEvents(deps.flowEvents);
  }

  /** Emit the per-flow events from now on, or stop, in every thread (connections in progress included). */
  setFlowEvents(on: boolean): void {
    Atomics.store(new Int32Array(this.flowEvents), 0, on ? 1 : 0);
  }

  /** No accept from here on, in every thread (the listening sockets stay open and watched until told). */
  private stopAccepting(): void {
    Atomics.store(new Int32Array(this.accepting), 0, 0);
  }

  /** Listen on every address; a failure closes what was opened and throws with the address. */
  async start(): Promise<Endpoint[]> {
    await this.bind(new Set());
    return this.adopt(new Map());
  }

  keys(): string[] {
    return this.config.listen.map(endpointKey);
  }

  /**
   * Listen on the endpoints not in `skip` (those another listener hands over, see adopt) and start
   * the engine threads, accepting nothing yet. A failure closes what this call opened and throws.
   */
  async bind(skip: ReadonlySet<string>): Promise<void> {
    const { sockets } = this.deps;
    const opened: string[] = [];
    try {
      for (const at of this.config.listen) {
        const key = endpointKey(at);
        if (skip.has(key) || this.fds.has(key)) continue;
        const family: C.Family = at.address.includes(':') ? 6 : 4;
        const fd = sockets.open({ family, transport: 'tcp', reuseAddress: true });
        try {
          // Accepted sockets inherit these two: a crashed daemon resets its clients; segments leave as they come.
          sockets.setResetOnClose(fd, true);
          sockets.setInt(fd, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
          // The listener's own: a connection is handed over when its first bytes (the header) come.
          sockets.setInt(fd, C.IPPROTO_TCP, C.TCP_DEFER_ACCEPT, 1);
          sockets.bind(fd, { family, address: at.address, port: at.port });
          sockets.listen(fd, BACKLOG);
        } catch (error) {
          sockets.close(fd);
          throw new TproxyError('ERR_SYSCALL', `mmproxy ${this.config.name}: cannot listen on ${at.address}:${at.port}: ${(error as Error).message}`, { errno: errnoOf(error) });
        }
        this.fds.set(key, fd);
        opened.push(key);
      }
      if (this.threads.length === 0) await this.startThreads();
    } catch (error) {
      for (const key of opened) {
        sockets.close(this.fds.get(key) ?? -1);
        this.fds.delete(key);
      }
      throw error;
    }
  }

  private async startThreads(): Promise<void> {
    const engine: MmproxyEngineConfig = {
      name: this.config.name,
      listeners: [],
      accepting: this.accepting,
      flowEvents: this.flowEvents,
      allowedSources: this.config.allowedSources,
      ...(this.config.backend4 ? { backend4: this.config.backend4 } : {}),
      ...(this.config.backend6 ? { backend6: this.config.backend6 } : {}),
      ...(this.config.healthTarget ? { healthTarget: this.config.healthTarget } : {}),
      headerTimeoutMs: this.config.headerTimeoutMs,
      maxHeaderBytes: this.config.maxHeaderBytes,
      upstreamMark: this.config.upstreamMark,
      connectTimeoutMs: this.config.connectTimeoutMs,
      idleTimeoutMs: this.config.idleTimeoutMs,
      pipeBytes: PIPE_BYTES,
      ...(this.deps.budget ? { budget: this.deps.budget.buffer } : {}),
      countersIntervalMs: 1000,
    };
    const started = Array.from({ length: Math.max(1, this.deps.threads) }, () => this.startThread(engine));
    this.threads = started.map((s) => s.thread);
    const results = await Promise.allSettled(started.map((s) => s.ready));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(this.threads.map((t) => t.worker.terminate()));
      this.threads = [];
      throw failed.reason;
    }
  }

  private startThread(engine: MmproxyEngineConfig): { thread: EngineThread; ready: Promise<void> } {
    const entry = this.deps.engine === 'uring' ? './uring-thread.js' : './splice-thread.js';
    const worker = new Worker(new URL(entry, import.meta.url), { workerData: { mmproxyEngine: engine } });
    const thread: EngineThread = { worker, wakeFd: -1, last: emptyMmproxyCounters(), connections: 0, stopped: false, waiting: new Map(), exited: new Promise((resolve) => worker.once('exit', () => resolve())) };
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: FromMmproxyEngine) => {
        switch (m.kind) {
          case 'ready':
            thread.wakeFd = m.wakeFd;
            resolve();
            break;
          case 'events':
            // Counters first: whoever reads them on an event sees it counted.
            this.take(thread, m.counters);
            thread.connections = m.connections;
            for (const e of m.events) this.deps.emit(e);
            break;
          case 'counters':
            this.take(thread, m.counters);
            thread.connections = m.connections;
            break;
          case 'released':
            thread.waiting.get(m.requestId)?.();
            break;
          case 'stopped':
            this.take(thread, m.counters);
            thread.connections = 0;
            thread.stopped = true;
            if (this.threads.every((t) => t.stopped)) this.idle?.();
            break;
          case 'fatal': {
            const error = new TproxyError(m.code as TproxyErrorCode, `mmproxy ${this.config.name} engine: ${m.message}`);
            this.deps.emit({ type: 'error', code: m.code, message: error.message });
            reject(error);
            break;
          }
        }
      });
      worker.once('error', (error) => reject(new TproxyError('ERR_SYSCALL', `mmproxy ${this.config.name} engine failed: ${error.message}`, {}, { cause: error })));
    });
    return { thread, ready };
  }

  /** Add what a thread counted since its last report. */
  private take(thread: EngineThread, now: MmproxyCounters): void {
    const c = this.counters;
    const last = thread.last;
    c.headersProxy += now.headersProxy - last.headersProxy;
    c.headersLocal += now.headersLocal - last.headersLocal;
    c.active += now.active - last.active;
    c.bytesFromClient += now.bytesFromClient - last.bytesFromClient;
    c.bytesFromBackend += now.bytesFromBackend - last.bytesFromBackend;
    c.pipeResizesRefused += now.pipeResizesRefused - last.pipeResizesRefused;
    c.pipeWaits += now.pipeWaits - last.pipeWaits;
    // A gauge: the sum of each thread's line now.
    c.pipeWaiting += now.pipeWaiting - last.pipeWaiting;
    for (const key of ['rejected', 'connectErrors', 'closed'] as const) {
      for (const [reason, n] of Object.entries(now[key])) {
        const added = n - (last[key][reason] ?? 0);
        for (let i = 0; i < added; i++) count(c[key], reason);
      }
    }
    thread.last = now;
  }

  /**
   * Take over `handed` (listening sockets of the listener this one replaces, by key) and start
   * accepting on every socket: from here new connections are this listener's. Cannot fail.
   */
  adopt(handed: ReadonlyMap<string, HandedListener>): Endpoint[] {
    for (const [key, h] of handed) if (typeof h === 'number') this.fds.set(key, h);
    const locals: Endpoint[] = [];
    for (const at of this.config.listen) {
      const fd = this.fds.get(endpointKey(at));
      if (fd === undefined) continue;
      const local = this.deps.sockets.localEndpoint(fd);
      locals.push(local);
      this.deps.emit({ type: 'mmproxy.listening', listener: this.config.name, local });
    }
    this.send({ kind: 'watch', fds: [...this.fds.values()] });
    return locals;
  }

  /** Give up the listening socket of `key` (to the listener that replaces this one): the threads stop watching it, it stays open. */
  release(key: string): HandedListener | undefined {
    const fd = this.fds.get(key);
    if (fd === undefined) return undefined;
    this.fds.delete(key);
    // A listener gives its sockets away only when it leaves (a reload replaces or removes it): it
    // accepts nothing more from now, so new connections are the new listener's (they wait in the
    // backlog until its threads watch the socket).
    this.stopAccepting();
    this.send({ kind: 'release', requestId: this.nextRequest++, fds: [fd] });
    return fd;
  }

  /** Stop accepting (the sockets not handed over are closed) and let the flows in progress finish. */
  async drain(): Promise<void> {
    await this.closeListeners();
    const done = new Promise<void>((resolve) => (this.idle = resolve));
    if (this.threads.every((t) => t.stopped)) this.idle?.();
    this.send({ kind: 'drain' });
    await done;
    await this.terminate();
  }

  /** Flows (and connections still reading their header) in progress, as the threads last reported. */
  get connections(): number {
    return this.threads.reduce((n, t) => n + t.connections, 0);
  }

  /** Stop accepting and reset every connection still open. */
  async stop(): Promise<void> {
    await this.closeListeners();
    const done = Promise.all(this.threads.map((t) => new Promise<void>((resolve) => (t.stopped ? resolve() : t.worker.on('message', (m: FromMmproxyEngine) => m.kind === 'stopped' && resolve())))));
    this.send({ kind: 'stop' });
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, ANSWER_MS).unref())]);
    await this.terminate();
  }

  /**
   * Stop listening now (shutdown(SHUT_RD) of a listening socket: new connections are refused, as
   * when the stream engine closes its server), then the threads stop watching them (answered),
   * then they are closed: a descriptor number is never closed while a thread may still use it.
   */
  private async closeListeners(): Promise<void> {
    this.stopAccepting();
    const fds = [...this.fds.values()];
    this.fds.clear();
    if (fds.length === 0) return;
    for (const fd of fds) loadLibc().shutdown(fd, C.SHUT_RD);
    await Promise.all(
      this.threads.map((t) => {
        if (t.stopped) return Promise.resolve();
        const requestId = this.nextRequest++;
        return new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ANSWER_MS);
          t.waiting.set(requestId, () => {
            clearTimeout(timer);
            resolve();
          });
          this.post(t, { kind: 'release', requestId, fds });
        });
      }),
    );
    for (const fd of fds) this.deps.sockets.close(fd);
  }

  private async terminate(): Promise<void> {
    const threads = this.threads;
    this.threads = [];
    await Promise.all(threads.map((t) => t.worker.terminate().then(() => t.exited)));
    // Closed here, not by the engine: a write to a closed (and reused) descriptor number would go elsewhere.
    for (const t of threads) if (t.wakeFd >= 0) this.deps.sockets.close(t.wakeFd);
  }

  private send(message: ToMmproxyEngine): void {
    for (const t of this.threads) this.post(t, message);
  }

  /** Post, then wake the thread's loop (its eventfd) so it reads the message now. */
  private post(thread: EngineThread, message: ToMmproxyEngine): void {
    if (thread.stopped) return;
    thread.worker.postMessage(message);
    loadLibc().write(thread.wakeFd, this.wake, 8);
  }
}

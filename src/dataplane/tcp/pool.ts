/**
 * The TCP supervisor: N worker processes (default one per core), each with its own SO_REUSEPORT
 * transparent listeners. A worker that dies is replaced (with backoff, bounded per minute); its
 * counters are kept, and the flows it held (the kernel reset them: see SO_LINGER in the engines)
 * count as closed `worker-lost`. Before the workers start, one plain bind of the port checks that no other
 * program (or another tproxy) holds it: SO_REUSEPORT would otherwise share it silently.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TproxyError, type TproxyErrorCode } from '../../core/errors.js';
import { anyAddress, type Endpoint } from '../../core/net/sockaddr.js';
import type { SocketApi } from '../../sys/socket.js';
import { withWorker, type EventSink } from '../events.js';
import { RestartWindow } from '../restart-window.js';
import { emptyTcpCounters, retireTcpCounters, sumTcpCounters, type TcpCounters } from './counters.js';
import { busiestFlows, type TcpFlowSnapshot, type TcpSnapshot } from './flows.js';
import type { RoutingUpdate } from '../routing.js';
import type { StopReport } from './relay.js';
import type { SupervisorMessage, TcpWorkerConfig, WorkerMessage } from './worker-protocol.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));

export interface TcpPoolConfig extends TcpWorkerConfig {
  readonly workers: number;
  /** More crashes than this within a minute stop the restarts (a crash loop helps nobody). */
  readonly maxRestartsPerMinute: number;
}

export interface TcpPoolDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
}

interface WorkerState {
  readonly child: ChildProcess;
  /** Questions asked of the worker (snapshot, flow-events) by requestId; undefined: no answer. */
  readonly requests: Map<number, (answer: WorkerMessage | undefined) => void>;
  /** The per-flow events setting it was started with (it may have changed before it was ready). */
  readonly flowEvents: boolean;
  /** The routing it was started with (a reload may have swapped it before it was ready). */
  readonly routing: TcpWorkerConfig['relay']['routing'];
  ready: boolean;
  counters: TcpCounters;
  stopped?: { report: StopReport; counters: TcpCounters };
}

export class TcpWorkerPool {
  private readonly workers = new Map<number, WorkerState>();
  private retired: TcpCounters = emptyTcpCounters();
  private readonly restarts: RestartWindow;
  /** Restarts waiting for their backoff; cleared by stop(). */
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private restartCount = 0;
  private nextRequest = 1;
  private stopping = false;
  /** The cap each worker applies (the configured one, lowered to fit its descriptor limit). */
  maxConnectionsPerWorker = 0;

  constructor(
    /** Workers start with it: setFlowEvents updates it, so a restarted worker has the value in force. */
    private config: TcpPoolConfig,
    private readonly deps: TcpPoolDeps,
  ) {
    this.restarts = new RestartWindow(config.maxRestartsPerMinute);
  }

  /** The pids of the running workers. */
  pids(): number[] {
    return [...this.workers.keys()];
  }

  /** Workers started to replace one that died. */
  workerRestarts(): number {
    return this.restartCount;
  }

  /**
   * Counters and busiest flows over all workers, now: each is asked (a message, answered from its
   * counters and flow table). One that does not answer within timeoutMs counts with the counters it
   * last reported and no flows.
   */
  async snapshot(limit: number, timeoutMs = 2000): Promise<TcpSnapshot> {
    const asks = [...this.workers.entries()].map(async ([pid, state]): Promise<TcpFlowSnapshot[]> => {
      const answer = await this.ask(state, (requestId) => ({ kind: 'snapshot', requestId, limit }), timeoutMs);
      if (answer?.kind !== 'snapshot') return [];
      state.counters = answer.counters;
      return answer.flows.map((f) => ({ ...f, pid }));
    });
    const flows = busiestFlows(await Promise.all(asks), limit);
    return { counters: this.counters(), flows };
  }

  /**
   * Per-flow events on or off in every worker, and in workers started later (restarts). Resolves
   * once each ready worker has it in force (or did not answer within timeoutMs); a worker still
   * starting is switched when it reports ready.
   */
  async setFlowEvents(on: boolean, timeoutMs = 2000): Promise<void> {
    this.config = { ...this.config, relay: { ...this.config.relay, flowEvents: on } };
    const ready = [...this.workers.values()].filter((s) => s.ready);
    await Promise.all(ready.map((s) => this.ask(s, (requestId) => ({ kind: 'flow-events', requestId, on }), timeoutMs)));
  }

  /**
   * New flows take these routes in every worker, and in workers started later; flows in progress
   * keep theirs. Resolves once each ready worker has them in force (or did not answer within
   * timeoutMs: IPC keeps the order, so it takes them before anything asked later); a worker still
   * starting is given them when it reports ready.
   */
  async setRouting(update: RoutingUpdate, timeoutMs = 2000): Promise<void> {
    this.config = { ...this.config, relay: { ...this.config.relay, routing: update.routing, sniffTimeoutMs: update.sniffTimeoutMs } };
    const ready = [...this.workers.values()].filter((s) => s.ready);
    await Promise.all(ready.map((s) => this.ask(s, (requestId) => ({ kind: 'routing', requestId, ...update }), timeoutMs)));
  }

  /** Reset flow `id` of worker `pid` toward both peers; false when no such flow is in progress there. */
  async closeFlow(pid: number, id: number, reason: string, timeoutMs = 2000): Promise<boolean> {
    const state = this.workers.get(pid);
    if (!state?.ready) return false;
    const answer = await this.ask(state, (requestId) => ({ kind: 'close-flow', requestId, id, reason }), timeoutMs);
    return answer?.kind === 'close-flow' && answer.closed;
  }

  /** Ask one worker; its answer (same requestId), or undefined if none came within timeoutMs or it exited. */
  private ask(state: WorkerState, question: (requestId: number) => SupervisorMessage, timeoutMs: number): Promise<WorkerMessage | undefined> {
    return new Promise((resolve) => {
      if (!state.child.connected) {
        resolve(undefined);
        return;
      }
      const requestId = this.nextRequest++;
      const done = (answer: WorkerMessage | undefined): void => {
        clearTimeout(timer);
        state.requests.delete(requestId);
        resolve(answer);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      state.requests.set(requestId, done);
      state.child.send(question(requestId), (error) => {
        if (error) done(undefined);
      });
    });
  }

  /** Totals over all workers, including those that were replaced. */
  counters(): TcpCounters {
    const live = [...this.workers.values()].map((w) => w.counters);
    const total = sumTcpCounters([this.retired, ...live]);
    return { ...total, active: live.reduce((n, c) => n + c.active, 0) };
  }

  async start(): Promise<Endpoint[]> {
    this.checkPortFree();
    const started = await Promise.allSettled(Array.from({ length: Math.max(1, this.config.workers) }, () => this.spawn()));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.stop(0);
      throw failed.reason;
    }
    const first = started[0];
    return first && first.status === 'fulfilled' ? first.value : [];
  }

  private checkPortFree(): void {
    const { sockets } = this.deps;
    for (const family of this.config.families) {
      const fd = sockets.open({ family, transport: 'tcp', transparent: true, reuseAddress: true });
      try {
        sockets.bind(fd, { family, address: this.config.relay.addresses?.[family] ?? anyAddress(family), port: this.config.relay.port });
      } finally {
        sockets.close(fd);
      }
    }
  }

  private spawn(): Promise<Endpoint[]> {
    const child = fork(WORKER_MAIN, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.send({ kind: 'config', config: this.config satisfies TcpWorkerConfig } satisfies SupervisorMessage);
    const pid = child.pid ?? -1;
    const state: WorkerState = { child, counters: emptyTcpCounters(), requests: new Map(), flowEvents: this.config.relay.flowEvents, routing: this.config.relay.routing, ready: false };
    this.workers.set(pid, state);
    this.deps.emit({ type: 'worker.start', pid, restart: this.restartCount });
    return new Promise<Endpoint[]>((resolve, reject) => {
      child.on('message', (message: WorkerMessage) => {
        switch (message.kind) {
          case 'ready': {
            state.ready = true;
            this.maxConnectionsPerWorker = message.maxConnections;
            const on = this.config.relay.flowEvents;
            if (on !== state.flowEvents) void this.ask(state, (requestId) => ({ kind: 'flow-events', requestId, on }), 2000);
            const { routing, sniffTimeoutMs } = this.config.relay;
            if (routing !== state.routing) void this.ask(state, (requestId) => ({ kind: 'routing', requestId, routing, sniffTimeoutMs }), 2000);
            resolve([...message.locals]);
            break;
          }
          case 'fatal':
            reject(new TproxyError(message.code as TproxyErrorCode, message.message, message.details ?? {}));
            break;
          case 'events':
            for (const event of message.events) this.deps.emit(withWorker(event, pid));
            break;
          case 'counters':
            state.counters = message.counters;
            break;
          case 'snapshot':
          case 'flow-events':
          case 'routing':
          case 'close-flow':
            state.requests.get(message.requestId)?.(message);
            break;
          case 'stopped':
            state.counters = message.counters;
            state.stopped = { report: message.report, counters: message.counters };
            break;
        }
      });
      child.on('exit', (exitCode, signal) => {
        this.workers.delete(pid);
        for (const answer of [...state.requests.values()]) answer(undefined);
        const { counters: retired, lost } = retireTcpCounters(state.counters);
        this.retired = sumTcpCounters([this.retired, retired]);
        if (!state.ready) {
          reject(new TproxyError('ERR_SYSCALL', `tcp worker ${pid} exited before it was ready (code ${exitCode ?? '-'}, signal ${signal ?? '-'})`));
          return;
        }
        if (this.stopping) return;
        const restarting = this.restarts.allow();
        this.deps.emit({ type: 'worker.exit', pid, exitCode, signal, restarting, lostFlows: lost });
        if (restarting) {
          const delay = this.restarts.backoffMs();
          // Not unref()'d: with a single worker, this timer is what keeps the daemon's event loop
          // alive until the replacement runs (an unref'd one let the daemon exit silently).
          const timer = setTimeout(() => {
            this.restartTimers.delete(timer);
            if (this.stopping) return;
            this.restartCount++;
            this.spawn().catch((error: unknown) => this.deps.emit({ type: 'error', code: 'ERR_SYSCALL', message: `tcp worker restart failed: ${(error as Error).message}` }));
          }, delay);
          this.restartTimers.add(timer);
        }
      });
    });
  }

  /** Stop accepting in every worker, let flows finish for up to graceMs, then reset the rest. */
  async stop(graceMs: number): Promise<StopReport> {
    this.stopping = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.restartTimers.clear();
    const states = [...this.workers.values()];
    const exits = states.map((s) => new Promise<void>((resolve) => (s.child.exitCode !== null || s.child.signalCode !== null ? resolve() : s.child.once('exit', () => resolve()))));
    for (const s of states) {
      if (s.child.connected) s.child.send({ kind: 'stop', graceMs } satisfies SupervisorMessage);
      else s.child.kill('SIGKILL');
    }
    const timer = setTimeout(() => {
      for (const s of states) s.child.kill('SIGKILL');
    }, graceMs + 3000);
    await Promise.all(exits);
    clearTimeout(timer);
    return states.reduce((a, s) => ({ completed: a.completed + (s.stopped?.report.completed ?? 0), forced: a.forced + (s.stopped?.report.forced ?? 0) }), { completed: 0, forced: 0 });
  }
}

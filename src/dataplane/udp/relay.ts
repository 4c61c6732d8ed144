/**
 * Transparent UDP relay, main-thread side: opens the IP_TRANSPARENT + IP_RECVORIGDSTADDR listeners
 * (so address-in-use and privilege errors surface at start), then runs the relay loop in a worker.
 */
import { Worker } from 'node:worker_threads';
import { TproxyError } from '../../core/errors.js';
import type { Family } from '../../core/net/constants.js';
import { anyAddress, type Endpoint } from '../../core/net/sockaddr.js';
import type { SocketApi } from '../../sys/socket.js';
import type { EventSink, UpstreamMode } from '../events.js';
import type { UdpWorkerData, UdpWorkerMessage } from './protocol.js';

export interface UdpRelayConfig {
  readonly families: readonly Family[];
  readonly port: number;
  readonly upstream: UpstreamMode;
  readonly upstreamMark: number;
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  readonly maxDatagramBytes: number;
}

export interface UdpRelayDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
}

export class UdpRelay {
  private worker: Worker | undefined;
  private readonly control = new SharedArrayBuffer(4);
  private listenerFds: number[] = [];
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: UdpRelayConfig,
    private readonly deps: UdpRelayDeps,
  ) {}

  async start(): Promise<Endpoint[]> {
    const { sockets } = this.deps;
    const listeners: UdpWorkerData['listeners'][number][] = [];
    const locals: Endpoint[] = [];
    try {
      for (const family of this.config.families) {
        const fd = sockets.open({ family, transport: 'udp', transparent: true, reuseAddress: true, recvOriginalDestination: true });
        this.listenerFds.push(fd);
        sockets.bind(fd, { family, address: anyAddress(family), port: this.config.port });
        listeners.push({ fd, family, port: this.config.port });
        locals.push(sockets.localEndpoint(fd));
      }
    } catch (error) {
      this.closeListeners();
      throw error;
    }
    const data: UdpWorkerData = {
      listeners,
      upstream: this.config.upstream,
      upstreamMark: this.config.upstreamMark,
      idleTimeoutMs: this.config.idleTimeoutMs,
      maxSessions: this.config.maxSessions,
      maxDatagramBytes: this.config.maxDatagramBytes,
      control: this.control,
    };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
    this.worker = worker;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (message: UdpWorkerMessage) => {
        switch (message.kind) {
          case 'ready':
            resolve();
            break;
          case 'events':
            for (const event of message.events) this.deps.emit(event);
            break;
          case 'fatal':
            this.deps.emit({ type: 'error', code: message.code, message: `udp relay loop stopped: ${message.message}` });
            break;
          case 'stopped':
            void worker.terminate();
            break;
        }
      });
      worker.once('error', (error) => reject(new TproxyError('ERR_SYSCALL', `udp relay worker failed: ${error.message}`, {}, { cause: error })));
    });
    for (const local of locals) this.deps.emit({ type: 'listening', transport: 'udp', family: local.family, local });
    return locals;
  }

  /** Stop the loop (sessions closed and reported), then close the listeners. */
  async stop(timeoutMs = 2000): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) {
      Atomics.store(new Int32Array(this.control), 0, 1);
      const timer = setTimeout(() => void worker.terminate(), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.closeListeners();
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

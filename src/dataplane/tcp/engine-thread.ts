/**
 * The thread entry the thread engines share (splice/thread.ts, uring/thread.ts, and mmproxy's
 * splice-thread.ts): the engine is built from the worker data, then its loop runs in slices,
 * yielding to the thread's event loop between them so the owner's messages arrive (the wake
 * eventfd cuts a slice short).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TproxyError } from '../../core/errors.js';
import type { FromEngine, SpliceEngineConfig, ToEngine } from './splice/protocol.js';

/**
 * Turns run back to back for up to this long before the thread yields to its event loop (where
 * messages from the owner arrive, and which the wake eventfd cuts short): a yield per turn cost a
 * second epoll_wait and a libuv pass for every few events.
 */
const SLICE_MS = 20;
/** Longest wait per turn; shorter while stopping, so the grace deadline is kept. */
const WAIT_MS = 200;
const STOPPING_WAIT_MS = 20;

/** What the thread entry drives: SpliceEngine, UringEngine, MmproxySpliceEngine. */
export interface ThreadEngine<In = ToEngine> {
  readonly wakeFd: number;
  /** Set when the wake eventfd fired (a message waits): the slice ends early. */
  woken: boolean;
  readonly stopping: boolean;
  /** One loop turn, waiting at most waitMs; false once the engine has stopped. */
  turn(waitMs: number): boolean;
  handle(message: In): void;
}

const fatal = (error: unknown): Extract<FromEngine, { kind: 'fatal' }> => ({ kind: 'fatal', code: error instanceof TproxyError ? error.code : 'ERR_SYSCALL', message: (error as Error).message });

/**
 * Run `create`'s engine in this worker thread, when it was started with its config under `key` in
 * the worker data (`spliceEngine` for the TPROXY engines). The engine posts 'ready', 'fatal' and
 * its own messages.
 */
export function runEngineThread<Config = SpliceEngineConfig, In = ToEngine, Out = FromEngine>(create: (config: Config, post: (message: Out) => void) => ThreadEngine<In>, key = 'spliceEngine'): void {
  const config = (workerData as Record<string, Config | undefined> | undefined)?.[key];
  if (!parentPort || !config) return;
  const port = parentPort;
  try {
    const engine = create(config, (m) => port.postMessage(m));
    port.on('message', (m: In) => engine.handle(m));
    port.postMessage({ kind: 'ready', wakeFd: engine.wakeFd } satisfies FromEngine);
    const loop = (): void => {
      try {
        const sliceEnd = Date.now() + SLICE_MS;
        engine.woken = false;
        let running: boolean;
        do running = engine.turn(engine.stopping ? STOPPING_WAIT_MS : WAIT_MS);
        while (running && !engine.woken && Date.now() < sliceEnd);
        if (running) setImmediate(loop);
        else port.close();
      } catch (error) {
        port.postMessage(fatal(error));
      }
    };
    setImmediate(loop);
  } catch (error) {
    port.postMessage(fatal(error));
  }
}

/**
 * Thread entry of the splice engine (SpliceRelay starts this file as a worker thread): run the
 * loop in slices, yielding to the thread's event loop between them so the owner's messages arrive.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TproxyError } from '../../../core/errors.js';
import { SpliceEngine } from './engine.js';
import type { FromEngine, SpliceEngineConfig, ToEngine } from './protocol.js';

/**
 * Turns run back to back for up to this long before the thread yields to its event loop (where
 * messages from the owner arrive, and which the wake eventfd cuts short): a yield per turn cost a
 * second epoll_wait and a libuv pass for every few events.
 */
const SLICE_MS = 20;
/** Longest epoll wait per turn; shorter while stopping, so the grace deadline is kept. */
const WAIT_MS = 200;
const STOPPING_WAIT_MS = 20;

const fatal = (error: unknown): FromEngine => ({ kind: 'fatal', code: error instanceof TproxyError ? error.code : 'ERR_SYSCALL', message: (error as Error).message });

if (parentPort && (workerData as { spliceEngine?: SpliceEngineConfig } | undefined)?.spliceEngine) {
  const port = parentPort;
  const config = (workerData as { spliceEngine: SpliceEngineConfig }).spliceEngine;
  try {
    const engine = new SpliceEngine(config, (m) => port.postMessage(m));
    port.on('message', (m: ToEngine) => engine.handle(m));
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

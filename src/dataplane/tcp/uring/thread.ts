/**
 * Thread entry of the uring engine (SpliceRelay starts this file for `--tcp-engine uring`): run
 * the loop in slices, yielding to the thread's event loop between them so the owner's messages
 * arrive (the wake eventfd, polled by the ring, cuts a slice short).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TproxyError } from '../../../core/errors.js';
import type { FromEngine, SpliceEngineConfig, ToEngine } from '../splice/protocol.js';
import { UringEngine } from './engine.js';

const SLICE_MS = 20;
const WAIT_MS = 200;
const STOPPING_WAIT_MS = 20;

const fatal = (error: unknown): FromEngine => ({ kind: 'fatal', code: error instanceof TproxyError ? error.code : 'ERR_SYSCALL', message: (error as Error).message });

if (parentPort && (workerData as { spliceEngine?: SpliceEngineConfig } | undefined)?.spliceEngine) {
  const port = parentPort;
  const config = (workerData as { spliceEngine: SpliceEngineConfig }).spliceEngine;
  try {
    const engine = new UringEngine(config, (m) => port.postMessage(m));
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

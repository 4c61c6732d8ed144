/**
 * Worker-thread entry of the UDP relay: runs UdpLoop until the stop flag is set, passing events to
 * the main thread in batches. The loop blocks in epoll_wait for as long as nothing of its own is
 * timed (UdpLoop.waitMs: without sessions, until traffic comes, a second at most); the owner's wake-up (an eventfd
 * it writes after each message and when it stops the loop) ends a wait at once, and the thread
 * then returns to its event loop to take the message. Busy, it yields every ~20 ms so queued
 * messages come in and events go out; events are never held across a wait longer than that.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TproxyError } from '../../core/errors.js';
import { DescriptorBudget } from '../../sys/descriptor-budget.js';
import { Wakeup } from '../../sys/wakeup.js';
import type { ProxyEvent } from '../events.js';
import { localAddressCache } from '../local-addresses.js';
import { UdpLoop } from './loop.js';
import { countedLoopBudget } from './loop-budget.js';
import { LoopSockets, RecordedSocketApi } from './loop-sockets.js';
import { LOOP_BUDGET_HELD, type UdpLoopMessage, type UdpWorkerData, type UdpWorkerMessage } from './protocol.js';
import { crashRequested, holdFirstReplyBind, stuckOnStop } from './test-seam.js';

const SLICE_MS = 20;

function post(message: UdpWorkerMessage): void {
  parentPort?.postMessage(message);
}

const data = workerData as UdpWorkerData;
const control = new Int32Array(data.control);
let events: ProxyEvent[] = [];
const flush = (): void => {
  if (events.length === 0) return;
  post({ kind: 'events', events });
  events = [];
};

let loop: UdpLoop | undefined;
try {
  loop = new UdpLoop(
    data,
    data.listeners.map((l) => l.fd),
    {
      api: new RecordedSocketApi(LoopSockets.attach(data.openSockets)),
      counters: new Float64Array(data.counters),
      emit: (e) => events.push(e),
      localAddresses: localAddressCache(),
      now: Date.now,
      flowEvents: () => Atomics.load(control, 2) === 1,
      budget: countedLoopBudget(DescriptorBudget.attach(data.budget), control, LOOP_BUDGET_HELD),
      wake: Wakeup.attach(data.wakeFd),
      ...(data.testSeam?.holdFirstReplyBind
        ? {
            testSeam: holdFirstReplyBind(control, () => {
              flush();
              post({ kind: 'test-seam.held' });
            }),
          }
        : {}),
    },
  );
  post({ kind: 'ready', engine: loop.engine });
  setImmediate(tick);
  // Taken between loop slices (the loop yields to this thread's event loop every SLICE_MS).
  parentPort?.on('message', (message: UdpLoopMessage) => {
    if (!loop) return;
    if (message.kind === 'sessions') {
      post({ kind: 'sessions', requestId: message.requestId, sessions: loop.sessionSnapshot(message.limit) });
      return;
    }
    if (message.kind === 'close-session') {
      const closed = loop.closeSession(message.id);
      // Its close event goes out now (before the answer), not with the next slice's.
      flush();
      post({ kind: 'close-session', requestId: message.requestId, closed });
      return;
    }
    try {
      loop.setRouting(message.routing, message.layout, new Float64Array(message.counters), message.sniffTimeoutMs);
      post({ kind: 'routing', requestId: message.requestId });
    } catch (error) {
      // Nothing was swapped (the table compiles before it replaces the old): the loop goes on as it was.
      post({ kind: 'routing', requestId: message.requestId, error: error instanceof Error ? error.message : String(error) });
    }
  });
} catch (error) {
  fatal(error);
}

function tick(): void {
  try {
    const sliceEnd = Date.now() + SLICE_MS;
    for (;;) {
      if (!loop) return;
      if (Atomics.load(control, 0) !== 0) {
        // A test's loop that will not stop (test-seam.ts): its owner terminates the thread after the stop timeout.
        if (data.testSeam?.stuckOnStop) stuckOnStop();
        loop.shutdown();
        flush();
        post({ kind: 'stopped' });
        return;
      }
      // A test asked for a crash (test-seam.ts): once, like an unexpected error.
      if (crashRequested(control)) throw new Error('crash requested by a test (UdpRelay.testSeamCrashLoop)');
      const left = sliceEnd - Date.now();
      if (left <= 0) break;
      const due = loop.waitMs();
      // Events waiting to go out: wait no longer than the slice (they leave when it ends).
      loop.runOnce(events.length === 0 ? due : Math.min(due, left));
      // The owner posted a message (or stops the loop): back to the event loop to take it.
      if (loop.takeWoken()) break;
      if (events.length >= 256) flush();
    }
    flush();
    setImmediate(tick);
  } catch (error) {
    fatal(error);
  }
}

/** An unexpected error: close every session (their descriptors go back) and tell the relay, which starts a new loop. */
function fatal(error: unknown): void {
  const e = error instanceof TproxyError ? error : new TproxyError('ERR_SYSCALL', error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  try {
    loop?.shutdown();
  } catch {
    // their sockets stay open: nothing else can close them; the relay gives back their budget entries once the thread exits (loop-budget.ts)
  }
  flush();
  post({ kind: 'fatal', message: e.message, code: e.code });
}

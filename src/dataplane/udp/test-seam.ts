/**
 * The UDP relay's test seam, and everything of it. Two uses:
 * - a crash on request (TEST_SEAM_CRASH): test/dataplane/udp/restart.root.test.ts makes the loop's
 *   thread throw, as an unexpected error would, to see the restart path;
 * - a loop that will not stop (stuckOnStop): test/dataplane/udp/stop-timeout.root.test.ts sees the
 *   relay terminate its thread after the stop timeout and give back the budget entries it held;
 * - a hold: a namespace test
 * (test/dataplane/udp/race.root.test.ts, through test/helpers/udp-relay-host.ts) stops the loop
 * between bind() and connect() of its first reply socket, so it can send other clients' datagrams
 * into that window and check they reach their own sessions. Production never sets it (the daemon
 * and the CLI build UdpRelayConfig without `testSeam`); then none of this runs.
 *
 * Across the thread boundary it is one flag in the worker data, one message (`test-seam.held`)
 * and one slot of the control array (TEST_SEAM_RELEASE), which the owner sets to let the loop go on.
 */

/** Set in UdpRelayConfig / UdpWorkerData by tests only. */
export interface UdpTestSeam {
  /** Hold the loop between bind() and connect() of its first reply socket until released (at most 10 s). */
  readonly holdFirstReplyBind: boolean;
  /** When asked to stop, block instead (at most STUCK_LIMIT_MS): the owner's stop timeout terminates the thread. */
  readonly stuckOnStop?: boolean;
}

/** The loop's side (UdpLoopDeps.testSeam): called between bind() and connect() of every reply socket. */
export interface UdpLoopTestSeam {
  readonly afterReplyBind: () => void;
}

/** Index in the control Int32Array (protocol.ts) that releases a hold. */
export const TEST_SEAM_RELEASE = 1;

const HOLD_LIMIT_MS = 10_000;

/**
 * The worker's side: a UdpLoopTestSeam that, the first time, announces the hold (after flushing
 * what came before) and blocks the thread until released or HOLD_LIMIT_MS pass.
 */
export function holdFirstReplyBind(control: Int32Array, announce: () => void): UdpLoopTestSeam {
  let held = false;
  return {
    afterReplyBind: () => {
      if (held) return;
      held = true;
      announce();
      Atomics.wait(control, TEST_SEAM_RELEASE, 0, HOLD_LIMIT_MS);
    },
  };
}

/** The owner's side: let a held loop go on (harmless when nothing is held). */
export function releaseHold(control: Int32Array): void {
  Atomics.store(control, TEST_SEAM_RELEASE, 1);
  Atomics.notify(control, TEST_SEAM_RELEASE);
}

/** Index in the control Int32Array (protocol.ts) that asks the loop's thread to throw once. */
export const TEST_SEAM_CRASH = 3;

/** The owner's side: the loop's thread throws at its next turn. */
export function requestCrash(control: Int32Array): void {
  Atomics.store(control, TEST_SEAM_CRASH, 1);
}

/** The worker's side: whether a crash was asked for (once: the request is taken). */
export function crashRequested(control: Int32Array): boolean {
  return Atomics.load(control, TEST_SEAM_CRASH) !== 0 && Atomics.exchange(control, TEST_SEAM_CRASH, 0) !== 0;
}

/** How long a loop asked to be stuck on stop blocks: far past any stop timeout, bounded so a test cannot hang for ever. */
const STUCK_LIMIT_MS = 30_000;

/** The worker's side: block the thread as a loop that does not stop would (Worker.terminate() ends the wait). */
export function stuckOnStop(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, STUCK_LIMIT_MS);
}

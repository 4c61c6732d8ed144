/**
 * The signals of `tproxy run`, handled from its first line to its last, so no signal ever meets
 * the default action (death, with the kernel rules left installed):
 *
 *   SIGTERM / SIGINT   starting or running: stop (flows get the grace period, then the rules go).
 *                      Again while stopping (or before the stop could begin): stop now (flows are
 *                      reset), the rules are still removed. Later ones are logged and ignored.
 *   SIGHUP             starting: queued, the reload runs once started (systemd may send it at any
 *                      time after the start); running: reload; stopping: logged and ignored.
 *
 * A failure that leaves the daemon unable to relay (the UDP loop dies for good, an unexpected
 * exception) is a stop too (`fail`), with exit code 1: the rules are removed rather than left to
 * black-hole the traffic they intercept.
 */
import type { Logger } from '../daemon/log.js';

export type StopSignal = 'SIGTERM' | 'SIGINT';
type Signal = StopSignal | 'SIGHUP';

/** Where signals come from (the process; an EventEmitter in tests). */
export interface SignalSource {
  on(signal: Signal, listener: () => void): unknown;
  off(signal: Signal, listener: () => void): unknown;
}

export type StopCause = { readonly kind: 'signal'; readonly signal: StopSignal } | { readonly kind: 'failure'; readonly error: Error };

export type RunPhase = 'starting' | 'running' | 'stopping';

export class RunSignals {
  private phase: RunPhase = 'starting';
  private cause: StopCause | undefined;
  private resolveStop!: (cause: StopCause) => void;
  /** Resolves at the first stop signal or failure. */
  readonly stopRequested: Promise<StopCause>;
  private reloadQueued = false;
  private reload: (() => void) | undefined;
  private hurryRequested = false;
  private hurry: (() => void) | undefined;
  private readonly handlers: { readonly signal: Signal; readonly handler: () => void }[];

  constructor(
    private readonly source: SignalSource,
    private readonly log: Logger,
  ) {
    this.stopRequested = new Promise((resolve) => (this.resolveStop = resolve));
    this.handlers = [
      { signal: 'SIGTERM', handler: () => this.onStop('SIGTERM') },
      { signal: 'SIGINT', handler: () => this.onStop('SIGINT') },
      { signal: 'SIGHUP', handler: () => this.onReload() },
    ];
    for (const { signal, handler } of this.handlers) source.on(signal, handler);
  }

  /** Started: `reload` answers SIGHUP from now on, and runs at once for one that came during the start. */
  running(reload: () => void): void {
    if (this.phase !== 'starting') return;
    this.phase = 'running';
    this.reload = reload;
    if (this.reloadQueued && !this.cause) {
      this.reloadQueued = false;
      this.log({ type: 'signal', signal: 'SIGHUP', action: 'reload', message: 'the reload asked for during the start runs now' });
      reload();
    }
  }

  /** Stopping: `hurry` ends the grace period (a second stop signal; at once if one came already). */
  stopping(hurry: () => void): void {
    this.phase = 'stopping';
    this.hurry = hurry;
    if (this.hurryRequested) hurry();
  }

  /** Stop because the daemon can no longer relay: the rules go, the exit code says it failed. */
  fail(error: Error): void {
    this.requestStop({ kind: 'failure', error });
  }

  /** The handlers go (the very last step of run). */
  dispose(): void {
    for (const { signal, handler } of this.handlers) this.source.off(signal, handler);
  }

  private requestStop(cause: StopCause): boolean {
    if (this.cause) return false;
    this.cause = cause;
    this.resolveStop(cause);
    return true;
  }

  private onStop(signal: StopSignal): void {
    if (this.requestStop({ kind: 'signal', signal })) {
      this.log({ type: 'signal', signal, action: 'stop', message: this.phase === 'starting' ? 'stopping once the start is done' : 'stopping' });
      return;
    }
    if (this.hurryRequested) {
      this.log({ type: 'signal', signal, action: 'ignored', message: 'already stopping now' });
      return;
    }
    this.hurryRequested = true;
    this.log({ type: 'signal', signal, action: 'stop-now', message: 'second stop signal: flows are reset now; the rules are still removed' });
    this.hurry?.();
  }

  private onReload(): void {
    if (this.cause || this.phase === 'stopping') {
      this.log({ type: 'signal', signal: 'SIGHUP', action: 'ignored', message: 'stopping: no reload' });
      return;
    }
    if (this.phase === 'starting') {
      this.reloadQueued = true;
      this.log({ type: 'signal', signal: 'SIGHUP', action: 'reload-queued', message: 'starting: the reload runs once started' });
      return;
    }
    this.reload?.();
  }
}

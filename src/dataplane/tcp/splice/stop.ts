/**
 * Graceful stop of the splice engine: accepting ends at once, flows in progress get until the
 * deadline to end on their own, then the rest are reset. Asked again while draining, the earlier
 * deadline wins.
 */
import type { StopReport } from '../relay.js';

export class GracefulStop {
  private deadline: number | undefined;
  private inFlight = 0;

  get stopping(): boolean {
    return this.deadline !== undefined;
  }

  /** True the first time (the caller closes the listeners then); later calls only move the deadline earlier. */
  begin(now: number, graceMs: number, activeFlows: number): boolean {
    if (this.deadline !== undefined) {
      this.deadline = Math.min(this.deadline, now + graceMs);
      return false;
    }
    this.deadline = now + graceMs;
    this.inFlight = activeFlows;
    return true;
  }

  /** Stopping, and no flow left or the deadline passed. */
  due(now: number, activeFlows: number): boolean {
    return this.deadline !== undefined && (activeFlows === 0 || now >= this.deadline);
  }

  /** The report once `forced` flows were reset at the deadline. */
  report(forced: number): StopReport {
    return { completed: this.inFlight - forced, forced };
  }
}

/** The dashboard's intervals under the test's hand (DashboardTimers): armed, listed and fired on demand. */
import type { DashboardTimers } from '../../src/daemon/dashboard/dashboard.js';

export class FakeTimers implements DashboardTimers {
  readonly armed = new Map<number, { readonly f: () => void; readonly ms: number }>();
  private next = 1;
  setInterval(f: () => void, ms: number): { unref(): unknown; id: number } {
    const id = this.next++;
    this.armed.set(id, { f, ms });
    return { id, unref: () => undefined };
  }
  clearInterval(timer: unknown): void {
    this.armed.delete((timer as { id: number }).id);
  }
  /** The periods of the intervals armed now, shortest first. */
  periods(): number[] {
    return [...this.armed.values()].map((t) => t.ms).sort((a, b) => a - b);
  }
  /** Fire every armed interval of `ms` once. */
  fire(ms: number): void {
    for (const t of [...this.armed.values()]) if (t.ms === ms) t.f();
  }
}

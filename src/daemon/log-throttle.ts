/**
 * Log lines that outsiders can make once per connection: a balancer sending bad headers, or a flood
 * past the descriptor budget, would write a line for each connection refused (`mmproxy.reject` at
 * info). Per listener and reason, the first in a window of THROTTLE_WINDOW_MS is written; the others
 * of that window are left out and only counted (their metric has every one), and the next line
 * written for that listener and reason says how many were left out before it.
 */
import type { LogEvent } from './log.js';

export const THROTTLE_WINDOW_MS = 10_000;

/** What a throttled event is kept apart by; undefined: never throttled. */
export function throttleKey(event: LogEvent): string | undefined {
  return event.type === 'mmproxy.reject' ? `${event.listener}\0${event.reason}` : undefined;
}

export class LogThrottle {
  /** By key: the window's end (ms) and the events left out in it. Keys are listeners x reasons: few. */
  private readonly windows = new Map<string, { until: number; leftOut: number }>();

  constructor(private readonly windowMs = THROTTLE_WINDOW_MS) {}

  /** Whether an event of `key` at `now` (ms) is written: undefined when left out, else how many were left out before it. */
  admit(key: string, now: number): number | undefined {
    const window = this.windows.get(key);
    if (window && now < window.until) {
      window.leftOut++;
      return undefined;
    }
    this.windows.set(key, { until: now + this.windowMs, leftOut: 0 });
    return window?.leftOut ?? 0;
  }
}

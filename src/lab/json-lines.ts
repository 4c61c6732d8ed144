/** Collect JSON lines from a child's stream and wait for one that matches. */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { TproxyError } from '../core/errors.js';

export class JsonLines<T = Record<string, unknown>> {
  readonly items: T[] = [];
  readonly text: string[] = [];
  private waiters: { predicate: (item: T) => boolean; resolve: (item: T) => void }[] = [];
  private ended = false;
  private endWaiters: (() => void)[] = [];

  constructor(stream: Readable) {
    const rl = createInterface({ input: stream });
    rl.on('line', (line) => {
      this.text.push(line);
      let item: T;
      try {
        item = JSON.parse(line) as T;
      } catch {
        return;
      }
      this.items.push(item);
      this.waiters = this.waiters.filter((w) => {
        if (!w.predicate(item)) return true;
        w.resolve(item);
        return false;
      });
    });
    rl.on('close', () => {
      this.ended = true;
      for (const w of this.endWaiters) w();
    });
  }

  find(predicate: (item: T) => boolean): T | undefined {
    return this.items.find(predicate);
  }

  /** The first line (already seen or to come) matching `predicate`; ERR_TIMEOUT after timeoutMs. */
  waitFor(predicate: (item: T) => boolean, timeoutMs: number, what: string): Promise<T> {
    const seen = this.items.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new TproxyError('ERR_TIMEOUT', `${what} did not happen within ${timeoutMs} ms`, { lastLines: this.text.slice(-5) }));
      }, timeoutMs);
      const done = (item: T): void => {
        clearTimeout(timer);
        resolve(item);
      };
      this.waiters.push({ predicate, resolve: done });
      if (this.ended) {
        clearTimeout(timer);
        reject(new TproxyError('ERR_TIMEOUT', `${what} did not happen: the process ended (last lines: ${this.text.slice(-3).join(' | ')})`, { lastLines: this.text.slice(-5) }));
      }
    });
  }

  /** Resolves when the stream has ended (all lines read). */
  closed(): Promise<void> {
    return this.ended ? Promise.resolve() : new Promise((resolve) => this.endWaiters.push(resolve));
  }
}

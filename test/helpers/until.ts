/** Polling for namespace tests: what a daemon reports over its admin socket or metrics endpoint. */
import assert from 'node:assert/strict';

/** Poll `read` until `ok` holds (at most timeoutMs): counters of TCP workers arrive once a second. */
export async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await read();
  while (!ok(last)) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms; last: ${JSON.stringify(last).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 250));
    last = await read();
  }
  return last;
}

/** Shared by the sniffer tests: what an accepted name may look like, and the property-test budget. */
import assert from 'node:assert/strict';
import type { SniffResult } from '../../src/core/sniff/result.js';

/** Any name a sniffer returns matches this: nothing else may reach a log line or a route. */
export const SAFE_NAME = /^(?=.{1,253}$)[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;

/** Fixed seeds so property runs repeat; one per suite so a failure names its own. */
export const PROPERTY_RUNS = 1500;

/** A result is one of the three shapes, and a name is a safe one. */
export function assertSniffResult(result: SniffResult, protocol?: string): void {
  switch (result.kind) {
    case 'more':
    case 'none':
      assert.deepEqual(Object.keys(result), ['kind']);
      return;
    case 'name':
      assert.match(result.name, SAFE_NAME);
      if (protocol !== undefined) assert.equal(result.protocol, protocol);
      return;
    default:
      assert.fail(`not a SniffResult: ${JSON.stringify(result)}`);
  }
}

// Hostile admin requests: any line a local client may send (JSON or not, any shape, huge values).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseAdminRequest } from '../../src/daemon/admin-protocol.js';
import { FUZZ, hostileText, jsonValue, onlyTproxyErrors } from '../helpers/hostile.js';

describe('hostile admin requests', () => {
  it('a request or the project\'s error, with a message of bounded size', () => {
    const request = fc.oneof(
      hostileText,
      jsonValue.map((v) => JSON.stringify(v)),
      fc.record({ id: fc.oneof(jsonValue, hostileText), method: fc.oneof(fc.constantFrom('status', 'flows'), hostileText, jsonValue), params: fc.oneof(jsonValue, fc.record({ top: fc.oneof(jsonValue, fc.integer()) })) }, { requiredKeys: [] }).map((r) => JSON.stringify(r)),
    );
    fc.assert(
      fc.property(request, (line) => {
        try {
          parseAdminRequest(line);
        } catch (error) {
          onlyTproxyErrors(() => {
            throw error;
          });
          assert.ok((error as Error).message.length < 1000, `${(error as Error).message.length} characters`);
        }
      }),
      FUZZ,
    );
  });
});

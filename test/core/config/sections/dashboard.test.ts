// The dashboard section: off by default, and its token a secret that no message repeats.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../../src/core/config/document.js';
import { isTproxyError } from '../../../../src/core/errors.js';

const load = (text: string) => loadConfig({ file: 't.yaml', text });

describe('dashboard config', () => {
  it('is off by default and read-only without a token', () => {
    assert.equal(load('').dashboard.enabled, false);
    assert.equal(load('dashboard: { enabled: true }').dashboard.token, undefined);
  });

  it('takes a long token as it is', () => {
    const token = 'b3f0c1d2e4a5968778695a4b3c2d1e0f';
    assert.equal(load(`dashboard: { enabled: true, token: ${token} }`).dashboard.token, token);
  });

  for (const token of ['short-secret', 'a-long-enough-token-with-a-bad-char!', 'another long one with spaces']) {
    it(`refuses the token ${JSON.stringify(token.slice(0, 3))}… without repeating it (message or details)`, () => {
      assert.throws(
        () => load(`dashboard:\n  enabled: true\n  token: "${token}"\n`),
        (e: unknown) => isTproxyError(e) && /dashboard\.token: "\(secret\)" is not allowed: use at least 16 characters/.test(e.message) && !JSON.stringify({ message: e.message, details: e.details }).includes(token),
      );
    });
  }
});

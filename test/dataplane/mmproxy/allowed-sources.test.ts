import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TproxyError } from '../../../src/core/errors.js';
import { AllowedSources } from '../../../src/dataplane/mmproxy/allowed-sources.js';

describe('mmproxy allowedSources', () => {
  it('answers for IPv4 and IPv6 addresses, the same address twice and another in between alike', () => {
    const allowed = new AllowedSources(['127.0.0.0/8', '2001:db8::/32'], 'test');
    const asked = ['127.0.0.1', '127.0.0.1', '198.51.100.10', '198.51.100.10', '127.0.0.2', '2001:db8::1', '2001:db9::1', '2001:db8::1'];
    assert.deepEqual(asked.map((a) => allowed.has(a)), [true, true, false, false, true, true, false, true]);
  });

  it('a prefix that does not parse: the error names the setting', () => {
    assert.throws(() => new AllowedSources(['127.0.0.0/33'], 'mmproxy web: allowedSources'), (e: unknown) => e instanceof TproxyError && e.message.includes('mmproxy web: allowedSources'));
  });
});

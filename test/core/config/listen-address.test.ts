import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatListenAddress, parseListenAddress } from '../../../src/core/config/listen-address.js';

describe('--metrics-address', () => {
  it('reads IPv4, bracketed IPv6 and localhost', () => {
    assert.deepEqual(parseListenAddress('--metrics-address', '127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseListenAddress('--metrics-address', '[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListenAddress('--metrics-address', 'localhost:9464'), { host: 'localhost', port: 9464 });
    assert.equal(formatListenAddress({ host: '::1', port: 9464 }), '[::1]:9464');
  });
  const bad: [string, string][] = [
    ['9464', 'not HOST:PORT'],
    ['::1:9464', 'not HOST:PORT'],
    ['[127.0.0.1]:9464', '127.0.0.1 is not an IPv6 address'],
    ['example.org:9464', 'example.org is not an IPv4 address or localhost (IPv6 goes in brackets)'],
    ['127.0.0.1:70000', 'the port must be from 0 to 65535'],
  ];
  for (const [text, why] of bad) {
    it(`refuses ${text}`, () => assert.throws(() => parseListenAddress('--metrics-address', text), { code: 'ERR_INVALID_ARGUMENT', message: `--metrics-address ${text}: ${why} (write HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464)` }));
  }
});

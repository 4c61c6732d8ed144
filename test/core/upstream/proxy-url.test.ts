import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatUpstreamProxy, parseUpstreamProxy } from '../../../src/core/upstream/proxy-url.js';

describe('upstream proxy URL', () => {
  it('reads SOCKS5 and HTTP proxies, IPv4 and IPv6, with default ports', () => {
    assert.deepEqual(parseUpstreamProxy('socks5://203.0.113.30:1081'), { protocol: 'socks5', endpoint: { family: 4, address: '203.0.113.30', port: 1081 } });
    assert.deepEqual(parseUpstreamProxy('socks5://[2001:db8:2::30]'), { protocol: 'socks5', endpoint: { family: 6, address: '2001:db8:2::30', port: 1080 } });
    assert.deepEqual(parseUpstreamProxy('http://203.0.113.30'), { protocol: 'http', endpoint: { family: 4, address: '203.0.113.30', port: 3128 } });
  });

  it('reads percent-encoded credentials and never prints the password', () => {
    const proxy = parseUpstreamProxy('socks5://al%40ice:p%3Aw@203.0.113.30:1080');
    assert.deepEqual(proxy.auth, { username: 'al@ice', password: 'p:w' });
    assert.equal(formatUpstreamProxy(proxy), 'socks5://al%40ice:***@203.0.113.30:1080');
  });

  it('says what to write for what it cannot use', () => {
    const cases: [string, RegExp][] = [
      ['203.0.113.30:1080', /not a URL/],
      ['socks4://203.0.113.30', /socks4:\/\/ is not supported/],
      ['https://203.0.113.30', /https:\/\/ is not supported/],
      ['socks5://proxy.example:1080', /proxy\.example is not an IP address \(names are not resolved\)/],
      ['http://203.0.113.30/path', /a path, query or fragment/],
      [`socks5://${'u'.repeat(256)}:p@203.0.113.30`, /at most 255 bytes/],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parseUpstreamProxy(text), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT' && message.test(e.message) && /write socks5:\/\/ADDR:PORT/.test(e.message), text);
    }
  });
});

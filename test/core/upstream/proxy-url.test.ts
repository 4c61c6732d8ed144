import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isTproxyError } from '../../../src/core/errors.js';
import { formatUpstreamProxy, maskProxyUrl, parseUpstreamProxy } from '../../../src/core/upstream/proxy-url.js';

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
      ['socks5://proxy.example:1080', /"proxy\.example" is not an IP address \(names are not resolved\)/],
      ['http://203.0.113.30/path', /a path, query or fragment/],
      [`socks5://${'u'.repeat(256)}:p@203.0.113.30`, /at most 255 bytes/],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parseUpstreamProxy(text), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT' && message.test(e.message) && /write socks5:\/\/ADDR:PORT/.test(e.message), text);
    }
  });

  it('refuses port 0', () => {
    assert.throws(() => parseUpstreamProxy('socks5://203.0.113.20:0'), /port 0 is not a port a proxy can listen on/);
  });

  it('masks the password of a URL that does not even parse', () => {
    assert.equal(maskProxyUrl('socks5://alice:S3cr3t@203.0.113.20:99999'), 'socks5://alice:***@203.0.113.20:99999');
    assert.equal(maskProxyUrl('http://bob:p@ss:w/rd@192.0.2.1:3128'), 'http://bob:***@192.0.2.1:3128');
    assert.equal(maskProxyUrl('alice:S3cr3t@192.0.2.1:1080'), 'alice:***@192.0.2.1:1080');
    assert.equal(maskProxyUrl('socks5://carol@192.0.2.1:1080'), 'socks5://carol@192.0.2.1:1080');
    assert.equal(maskProxyUrl('socks5://192.0.2.1:1080'), 'socks5://192.0.2.1:1080');
    assert.throws(
      () => parseUpstreamProxy('socks5://alice:S3cr3t@203.0.113.20:99999'),
      (e: unknown) => isTproxyError(e) && !JSON.stringify(e.toJSON()).includes('S3cr3t') && e.message.includes('"socks5://alice:***@203.0.113.20:99999"'),
    );
  });

  it('never puts the password of a refused URL in its error (message or details)', () => {
    const broken = fc.constantFrom('99999', '0', 'x', '', '1080/path', '1080?q', '1080#f', '-1');
    const scheme = fc.constantFrom('socks5://', 'http://', 'ftp://', 'socks5:/', '');
    const host = fc.constantFrom('203.0.113.20', '[2001:db8::1]', 'example.com', '', '::1');
    const password = fc.string({ minLength: 1, maxLength: 12 }).map((s) => `S3cr3t${s}`);
    fc.assert(
      fc.property(scheme, fc.stringMatching(/^[a-z]{0,6}$/), password, host, broken, (s, user, pass, h, port) => {
        const text = `${s}${user}:${pass}@${h}:${port}`;
        try {
          parseUpstreamProxy(text);
        } catch (error) {
          assert.ok(isTproxyError(error), String(error));
          assert.ok(!JSON.stringify(error.toJSON()).includes('S3cr3t'), `${text} -> ${error.message}`);
        }
      }),
      { seed: 1313, numRuns: 300 },
    );
  });
});

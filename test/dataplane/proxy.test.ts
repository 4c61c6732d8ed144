import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUpstreamProxy } from '../../src/core/upstream/proxy-url.js';
import { DEFAULT_PROXY_CONFIG, Proxy } from '../../src/dataplane/proxy.js';

describe('Proxy configuration', () => {
  const upstreamProxy = parseUpstreamProxy('socks5://u:secret@203.0.113.30:1080');
  const emit = (): void => undefined;

  it('refuses UDP through an HTTP upstream proxy (relaying it straight would bypass the proxy); a SOCKS5 one carries it', () => {
    const httpProxy = parseUpstreamProxy('http://u:p@203.0.113.30:3128');
    assert.throws(() => new Proxy({ ...DEFAULT_PROXY_CONFIG, transports: ['tcp', 'udp'], upstreamProxy: httpProxy }, { emit }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
      assert.match(e.message, /^UDP cannot go through the upstream proxy http:\/\/u:\*\*\*@203\.0\.113\.30:3128 .*intercept TCP only .*or use a socks5:\/\/ proxy/);
      return true;
    });
    assert.doesNotThrow(() => new Proxy({ ...DEFAULT_PROXY_CONFIG, transports: ['tcp', 'udp'], upstreamProxy }, { emit }));
  });

  it('refuses transparent upstream with a proxy, and accepts direct TCP', () => {
    assert.throws(() => new Proxy({ ...DEFAULT_PROXY_CONFIG, transports: ['tcp'], upstream: 'transparent', upstreamProxy }, { emit }), /upstream mode transparent cannot be combined with the upstream proxy/);
    assert.doesNotThrow(() => new Proxy({ ...DEFAULT_PROXY_CONFIG, transports: ['tcp'], upstreamProxy }, { emit }));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUpstreamProxy } from '../../src/core/upstream/proxy-url.js';
import { DEFAULT_PROXY_CONFIG, Proxy } from '../../src/dataplane/proxy.js';

describe('Proxy configuration', () => {
  const upstreamProxy = parseUpstreamProxy('socks5://u:secret@203.0.113.30:1080');
  const emit = (): void => undefined;

  it('refuses UDP through an upstream proxy: relaying it straight would bypass the proxy', () => {
    assert.throws(() => new Proxy({ ...DEFAULT_PROXY_CONFIG, transports: ['tcp', 'udp'], upstreamProxy }, { emit }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
      assert.match(e.message, /^UDP cannot go through the upstream proxy socks5:\/\/u:\*\*\*@203\.0\.113\.30:1080 .*intercept TCP only/);
      return true;
    });
  });

  it('refuses transparent upstream with a proxy, and accepts direct TCP', () => {
    assert.throws(() => new Proxy({ ...DEFAULT_PROXY_CONFIG, transports: ['tcp'], upstream: 'transparent', upstreamProxy }, { emit }), /upstream mode transparent cannot be combined with the upstream proxy/);
    assert.doesNotThrow(() => new Proxy({ ...DEFAULT_PROXY_CONFIG, transports: ['tcp'], upstreamProxy }, { emit }));
  });
});

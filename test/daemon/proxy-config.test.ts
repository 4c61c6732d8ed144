// The data plane's configuration of a listener carries the UDP engine from `udp.engine` / --udp-engine.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/core/config/document.js';
import { proxyConfigOf } from '../../src/daemon/proxy-config.js';

describe('proxy configuration of a listener: the UDP engine', () => {
  it('is epoll by default, uring from the file, and the flag wins over the file; anything else is refused', () => {
    const engineOf = (text: string, values: Record<string, string> = {}): string => {
      const config = loadConfig({ file: 'tproxy.yaml', text }, { values });
      const [listener] = config.listeners;
      assert.ok(listener);
      return proxyConfigOf(config, listener, 2).udpEngine;
    };
    assert.equal(engineOf('log: { level: info }\n'), 'epoll');
    assert.equal(engineOf('udp: { engine: uring }\n'), 'uring');
    assert.equal(engineOf('udp: { engine: uring }\n', { 'udp-engine': 'epoll' }), 'epoll');
    assert.throws(() => engineOf('udp: { engine: splice }\n'), /udp\.engine: "splice" is not allowed: use one of epoll, uring/);
  });
});

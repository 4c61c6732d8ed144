import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backendFrom, planFromConfig, rulesConfigFrom } from '../../src/cli/selection.js';
import { isTproxyError } from '../../src/core/errors.js';
import { DEFAULT_BYPASS_DESTINATIONS } from '../../src/core/rules/config.js';

describe('rules options', () => {
  it('defaults: tcp:80,443 on both families, fail closed by drop, default bypass prefixes, no local traffic', () => {
    const config = rulesConfigFrom({});
    assert.deepEqual(config.intercept, [{ transport: 'tcp', ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }] }]);
    assert.deepEqual([config.failMode, config.tableName, config.localTraffic], ['drop', 'tproxy_rules', undefined]);
    assert.deepEqual(config.bypass, { destinations: DEFAULT_BYPASS_DESTINATIONS, sources: [] });
  });

  it('reads bypass, local, mangle and fail-mode flags', () => {
    const config = rulesConfigFrom({
      'bypass-dst': ['10.0.0.0/8'],
      'bypass-src': ['192.0.2.0/24'],
      'no-default-bypass': true,
      local: true,
      'local-exclude-uid': ['0', '1000'],
      'local-exclude-gid': ['100'],
      'set-mark': '0x100/0xff00',
      'set-dscp': 'AF41',
      'set-ttl': '64',
      'fail-mode': 'reject',
    });
    assert.deepEqual(config.bypass, { destinations: ['10.0.0.0/8'], sources: ['192.0.2.0/24'] });
    assert.deepEqual(config.localTraffic, { excludeUids: [0, 1000], excludeGids: [100] });
    assert.deepEqual(config.mangle, { mark: { value: 0x100, mask: 0xff00 }, dscp: 34, ttl: 64 });
    assert.equal(config.failMode, 'reject');
    assert.deepEqual(rulesConfigFrom({ 'set-mark': '0x10' }).mangle.mark, { value: 0x10, mask: 0xffffffff });
  });

  it('refuses bad values with what is allowed', () => {
    const refuses = (values: Parameters<typeof rulesConfigFrom>[0], message: RegExp): void => {
      assert.throws(() => planFromConfig(rulesConfigFrom(values)), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && message.test(e.message), message.source);
    };
    refuses({ 'fail-mode': 'closed' }, /--fail-mode closed: use open, drop, reject/);
    refuses({ 'set-dscp': 'gold' }, /--set-dscp gold: use a number 0-63 or a name/);
    refuses({ 'set-ttl': '300' }, /mangle.ttl: 300 is not a TTL \/ hop limit \(1-255\) \(--set-ttl\)/);
    refuses({ listen: '0' }, /--listen 0: use a port number from 1 to 65535/);
    refuses({ 'route-table': '255' }, /routeTable: 255 must be a free table id .* \(--route-table\)/);
    refuses({ local: true, 'local-exclude-uid': ['root'] }, /--local-exclude-uid root: use a positive integer/);
  });

  it('chooses the backend, and needs ip whichever it is', () => {
    const has = (...present: string[]) => (binary: string): boolean => present.includes(binary);
    assert.equal(backendFrom({}, has('nft', 'ip')), 'nft');
    assert.equal(backendFrom({ backend: 'iptables-legacy' }, has('nft', 'ip', 'iptables-legacy-restore')), 'iptables-legacy');
    assert.throws(() => backendFrom({}, has('nft')), (e: unknown) => isTproxyError(e, 'ERR_COMMAND_MISSING') && /`ip` was not found on PATH: install it: apt-get install iproute2/.test(e.message));
  });
});

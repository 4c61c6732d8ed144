import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backendFrom, configFrom, rulesConfigFrom } from '../../src/cli/selection.js';
import { isTproxyError } from '../../src/core/errors.js';
import { DEFAULT_BYPASS_DESTINATIONS } from '../../src/core/rules/config.js';
import { DSCP_NAMES } from '../../src/core/net/dscp.js';

describe('rules options', () => {
  it('defaults: one listener on 8000 for tcp:80,443 on both families, fail closed by drop, default bypass prefixes, no local traffic', () => {
    const config = rulesConfigFrom({});
    assert.deepEqual(
      config.listeners.map((l) => [l.name, l.port, l.families, l.intercept, l.upstreamMark]),
      [['main', 8000, [4, 6], [{ transport: 'tcp', ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }] }], 2]],
    );
    assert.deepEqual([config.failMode, config.tableName, config.localTraffic, config.families], ['drop', 'tproxy_rules', undefined, [4, 6]]);
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
      'intercepted-dscp': 'AF41',
      'intercepted-ttl': '64',
      'fail-mode': 'reject',
    });
    assert.deepEqual(config.bypass, { destinations: ['10.0.0.0/8'], sources: ['192.0.2.0/24'] });
    assert.deepEqual(config.localTraffic, { excludeUids: [0, 1000], excludeGids: [100] });
    assert.deepEqual(config.mangle, { mark: { value: 0x100, mask: 0xff00 }, dscp: 34, ttl: 64 });
    assert.equal(config.failMode, 'reject');
    assert.deepEqual(rulesConfigFrom({ 'set-mark': '0x10/0xf0' }).mangle.mark, { value: 0x10, mask: 0xf0 });
    assert.deepEqual(rulesConfigFrom({ family: '4', intercept: ['udp:53', 'tcp:80'], listen: '9000', 'listen-address': ['192.0.2.1'] }).listeners[0], {
      name: 'main',
      port: 9000,
      addresses: { 4: '192.0.2.1' },
      families: [4],
      intercept: [{ transport: 'udp', ports: [{ from: 53, to: 53 }] }, { transport: 'tcp', ports: [{ from: 80, to: 80 }] }],
      upstreamMark: 2,
    });
  });

  it('refuses bad values naming the flag, the setting and what is allowed', () => {
    const refuses = (values: Parameters<typeof rulesConfigFrom>[0], message: string): void => {
      assert.throws(() => rulesConfigFrom(values), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && e.message === message, message);
    };
    refuses({ 'fail-mode': 'closed' }, '--fail-mode: rules.failMode: "closed" is not allowed: use one of open, drop, reject');
    refuses({ upstream: 'transparant' }, '--upstream: listeners[0].upstream: "transparant" is not allowed: use one of direct, transparent (did you mean transparent?)');
    refuses({ 'intercepted-ttl': '300' }, '--intercepted-ttl: rules.mangle.ttl: 300 is not allowed: use an integer from 1 to 255');
    refuses({ 'set-ttl': '0' }, '--set-ttl: listeners[0].headers.ttl: 0 is not allowed: use an integer from 1 to 255');
    refuses({ 'set-dscp': 'fast' }, `--set-dscp: listeners[0].headers.dscp: "fast" is not allowed: use an integer from 0 to 63, a name (${Object.keys(DSCP_NAMES).join(', ')}) or copy`);
    refuses({ listen: '0' }, '--listen: listeners[0].port: 0 is not allowed: use a port from 1 to 65535');
    refuses({ 'route-table': '255' }, '--route-table: rules.routeTable: 255 must be a free table id from 1 to 4294967280 (not 253 default, 254 main, 255 local)');
    refuses({ local: true, 'local-exclude-uid': ['root'] }, '--local-exclude-uid: rules.local.excludeUids[0]: "root" is not allowed: use an integer from 0 to 4294967294');
    refuses({ 'local-exclude-uid': ['0'] }, '--local-exclude-uid: rules.local.excludeUids: only makes sense when this host\'s own traffic is intercepted: set enabled: true (--local)');
    refuses({ 'upstream-mark': '0x1' }, '--upstream-mark: listeners[0].upstreamMark: upstream mark 0x00000001 matches the tproxy fwmark under mask 0x00000001: the proxy\'s own traffic would be routed back to itself; choose a mark that differs inside the mask');
    refuses({ 'set-mark': '0x10' }, '--set-mark: rules.mangle.mark: conflicting marks: mask 0xffffffff overlaps the fwmark mask 0x00000001, so it would overwrite the mark that routes intercepted packets to the proxy; use bits outside 0x00000001');
    refuses({ intercept: ['tcp:80', 'tcp:70000'] }, '--intercept: listeners[0].intercept[1]: "tcp:70000" is not allowed: port 70000 is outside 1-65535');
  });

  it('reads --config, and lets flags override the file', async () => {
    const file = 'listeners:\n  - name: web\n    port: 8100\n    intercept: [tcp:80]\n    idleTimeoutMs: 1000\n  - name: dns\n    port: 8153\n    intercept: ["udp:53"]\nlog:\n  level: debug\n';
    const read = (name: string): Promise<string> => (name === 'tproxy.yaml' ? Promise.resolve(file) : Promise.reject(Object.assign(new Error('nope'), { code: 'ENOENT' })));
    const fromFile = await configFrom({ config: 'tproxy.yaml' }, read);
    assert.deepEqual(fromFile.listeners.map((l) => [l.name, l.port, l.idleTimeoutMs]), [['web', 8100, 1000], ['dns', 8153, 600_000]]);
    assert.equal(fromFile.log.level, 'debug');
    const overridden = await configFrom({ config: 'tproxy.yaml', 'idle-timeout-ms': '5000', 'log-level': 'info', 'no-rules': true }, read);
    assert.deepEqual(overridden.listeners.map((l) => l.idleTimeoutMs), [5000, 5000], 'a listener flag sets every listener');
    assert.deepEqual([overridden.log.level, overridden.rules.apply], ['info', false]);
    await assert.rejects(configFrom({ config: 'tproxy.yaml', listen: '9000' }, read), (e: unknown) => isTproxyError(e) && e.message === 'tproxy.yaml:2:3: listeners: --listen sets a setting of one listener, but there are 2: set port of each in the file');
    await assert.rejects(configFrom({ config: 'missing.yaml' }, read), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && e.message === 'missing.yaml: cannot read it (ENOENT)');
  });

  it('chooses the backend, and needs ip whichever it is', () => {
    const has = (...present: string[]) => (binary: string): boolean => present.includes(binary);
    assert.equal(backendFrom('auto', has('nft', 'ip')), 'nft');
    assert.equal(backendFrom('iptables-legacy', has('nft', 'ip', 'iptables-legacy-restore')), 'iptables-legacy');
    assert.throws(() => backendFrom('auto', has('nft')), (e: unknown) => isTproxyError(e, 'ERR_COMMAND_MISSING') && /`ip` was not found on PATH: install it: .*iproute/.test(e.message));
  });
});

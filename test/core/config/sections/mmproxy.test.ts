// The mmproxy section: defaults an operator replacing go-mmproxy can start from, and refusals that
// say what to fix (a backend of the wrong family, a bad prefix, a name used twice).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../../src/core/config/document.js';
import { parseHostPort } from '../../../../src/core/config/sections/mmproxy.js';

const load = (text: string) => loadConfig({ file: 't.yaml', text });

describe('mmproxy config', () => {
  it('is empty by default, and one entry gets safe defaults', () => {
    assert.deepEqual(load('').mmproxy, []);
    const [m] = load('mmproxy: [{}]').mmproxy;
    assert.deepEqual(m, {
      name: 'mmproxy',
      protocol: 'tcp',
      listen: [{ address: '0.0.0.0', port: 8443 }],
      allowedSources: ['127.0.0.0/8', '::1/128'],
      backend4: undefined,
      backend6: undefined,
      headerTimeoutMs: 5000,
      maxHeaderBytes: 2048,
      healthTarget: undefined,
      upstreamMark: 2,
      connectTimeoutMs: 10_000,
      idleTimeoutMs: 600_000,
      maxSessions: 4096,
    });
  });

  it('takes protocol udp with a session cap, and refuses another protocol', () => {
    const [m] = load('mmproxy: [{protocol: udp, maxSessions: 10}]').mmproxy;
    assert.equal(m!.protocol, 'udp');
    assert.equal(m!.maxSessions, 10);
    assert.throws(() => load('mmproxy: [{protocol: sctp}]'), /protocol/);
    assert.throws(() => load('mmproxy: [{protocol: udp, maxSessions: 0}]'), /maxSessions/);
  });

  it('reads backends per family and IPv6 in brackets', () => {
    const [m] = load('mmproxy:\n  - listen: ["[2001:db8::1]:9000", 192.0.2.1:9000]\n    backend4: 127.0.0.1:80\n    backend6: "[::1]:80"\n    allowedSources: [192.0.2.0/24]').mmproxy;
    assert.deepEqual(m!.listen, [{ address: '2001:db8::1', port: 9000 }, { address: '192.0.2.1', port: 9000 }]);
    assert.deepEqual(m!.backend6, { address: '::1', port: 80 });
    assert.deepEqual(m!.backend4, { address: '127.0.0.1', port: 80 });
  });

  for (const [yaml, says] of [
    ['mmproxy: [{backend4: "[::1]:80"}]', /::1 is not an IPv4 address/],
    ['mmproxy: [{allowedSources: [10.0.0.1/8]}]', /allowedSources/],
    ['mmproxy: [{listen: [localhost:80]}]', /ADDR:PORT/],
    ['mmproxy: [{maxHeaderBytes: 70000}]', /maxHeaderBytes/],
    ['mmproxy: [{name: a}, {name: a}]', /already the name of mmproxy\[0\]/],
  ] as const) {
    it(`refuses ${yaml}`, () => assert.throws(() => load(yaml), says));
  }

  it('runs with mmproxy entries alone: no listeners key means no transparent listener, and its rules are the reply routing only', async () => {
    const { rulesConfigOf } = await import('../../../../src/core/config/rules-of.js');
    const { planRules, plannedRules } = await import('../../../../src/core/rules/plan.js');
    const config = load('mmproxy:\n  - listen: [127.0.0.1:9000]\n    backend4: 127.0.0.1:80');
    assert.deepEqual(config.listeners, []);
    assert.deepEqual(load('listeners: []\nmmproxy: [{}]').listeners, []);
    // The default listener stays for a file without mmproxy entries, and one asked for is kept.
    assert.deepEqual(load('').listeners.map((l) => l.name), ['main']);
    assert.deepEqual(load('listeners: [{name: web}]\nmmproxy: [{}]').listeners.map((l) => l.name), ['web']);
    const plan = planRules(rulesConfigOf(config));
    const roles = plannedRules(plan).map(({ rule }) => rule.role);
    assert.ok(!roles.includes('tproxy') && !roles.includes('fail-closed'), roles.join(','));
    assert.ok(roles.includes('upstream-return'), roles.join(','));
    assert.deepEqual(plan.record.loopback, [4, 6]); // IPv6 clients reach the header's destination: maybe loopback
  });

  it('refuses a configuration with nothing to run', () => {
    assert.throws(() => load('listeners: []'), /t\.yaml:1:\d+: listeners: nothing to run: add a listener .*or an mmproxy entry/);
  });

  it('names the entry (with its index and line) whose upstream mark collides with the tproxy fwmark', () => {
    assert.throws(
      () => load('mmproxy:\n  - name: a\n  - name: b\n    upstreamMark: 0x1\n'),
      (error: Error) => {
        assert.match(error.message, /^t\.yaml:4:\d+: mmproxy\[1\]\.upstreamMark: upstream mark 0x0*1 matches the tproxy fwmark under mask 0x0*1: .*choose a mark that differs inside the mask$/m);
        assert.doesNotMatch(error.message, /mmproxy\.upstreamMark|mmproxy\[0\]/);
        return true;
      },
    );
    // Two entries with the same bad mark: each is named.
    assert.throws(() => load('mmproxy:\n  - {name: a, upstreamMark: 0x3}\n  - {name: b, upstreamMark: 0x3}\n'), (error: Error) => /mmproxy\[0\]\.upstreamMark/.test(error.message) && /mmproxy\[1\]\.upstreamMark/.test(error.message));
  });

  it('parseHostPort refuses a name, a port out of range and a bare IPv6 address', () => {
    for (const bad of ['example.com:80', '192.0.2.1:0', '192.0.2.1:65536', '2001:db8::1:80']) assert.throws(() => parseHostPort(bad), /is not ADDR:PORT/);
  });
});

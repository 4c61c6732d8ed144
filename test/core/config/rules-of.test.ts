// The rules configuration of a tproxy configuration, with listeners (and mmproxy entries) draining after a reload.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/core/config/document.js';
import { rulesConfigOf } from '../../../src/core/config/rules-of.js';
import { planRules } from '../../../src/core/rules/plan.js';

const config = (text: string) => loadConfig({ file: 'test.yaml', text });

describe('rulesConfigOf with draining listeners', () => {
  const old = rulesConfigOf(config('listeners:\n  - { name: web, port: 8100, families: [4], intercept: [tcp:80] }\n'));
  const next = config('listeners:\n  - { name: dns, port: 8153, families: [6], intercept: [udp:53] }\n');

  it('keeps the families of draining listeners installed (policy routing of IPv4 for the IPv4 flows still draining)', () => {
    const rules = rulesConfigOf(next, old.listeners);
    assert.deepEqual([rules.families, rules.draining?.map((l) => l.name)], [[4, 6], ['web']]);
    assert.deepEqual(planRules(rules).policyRoutes.map((r) => r.family), [4, 6]);
    assert.deepEqual(planRules(rules).table.chains[0]?.rules.filter((r) => r.role === 'divert').map((r) => r.comment), ['tproxy: divert udp ipv4', 'tproxy: divert tcp ipv4', 'tproxy: divert udp ipv6', 'tproxy: divert tcp ipv6']);
  });

  it('is the configuration alone without them', () => {
    assert.deepEqual(rulesConfigOf(next, []), rulesConfigOf(next));
    assert.equal('draining' in rulesConfigOf(next), false);
    assert.deepEqual(rulesConfigOf(next).families, [6]);
  });
});

describe('rulesConfigOf with draining mmproxy entries', () => {
  const before = config('mmproxy:\n  - { name: lb, backend4: 127.0.0.1:80, backend6: "[::1]:80", upstreamMark: 0x4 }\n');
  const next = config('mmproxy:\n  - { name: other, backend4: 203.0.113.20:80, backend6: "[::1]:80" }\n');

  it('keeps a removed entry\'s reply routing and upstream mark while it drains, and only its routing: its backends are not followed', () => {
    const rules = rulesConfigOf(next, [], before.mmproxy);
    assert.deepEqual([rules.mmproxy?.loopback, rules.mmproxy?.divert, rules.mmproxy?.upstreamMarks], [[4, 6], [4], [0x2, 0x4]]);
    assert.deepEqual(rules.mmproxy?.backends?.map((b) => b.listener), ['other', 'other']);
    assert.deepEqual(planRules(rules).record.loopback, [4, 6]);
  });

  it('drops it once drained', () => {
    const rules = rulesConfigOf(next);
    assert.deepEqual([rules.mmproxy?.loopback, rules.mmproxy?.upstreamMarks], [[6], [0x2]]);
    assert.deepEqual(planRules(rules).record.loopback, [6]);
  });
});

// The rules configuration of a tproxy configuration, with listeners draining after a reload.
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

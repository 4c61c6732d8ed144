// Golden plans: the exact nft script and iptables-restore input for a set of configurations.
// Regenerate after an intended change with UPDATE_GOLDEN=1 (then review the diff).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_RULES_CONFIG, type RulesConfig } from '../../../src/core/rules/config.js';
import { planRules } from '../../../src/core/rules/plan.js';
import { EMPTY_IPTABLES_STATE, plannedIptablesState, renderIptablesTransition } from '../../../src/core/rules/render-iptables.js';
import { renderNftScript } from '../../../src/core/rules/render-nft.js';
import { sourcePath } from '../../helpers/paths.js';

const base: RulesConfig = { ...DEFAULT_RULES_CONFIG, intercept: [{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }, { transport: 'udp', ports: [{ from: 80, to: 80 }] }] };

const CONFIGS: Record<string, { config: RulesConfig; iptables: boolean }> = {
  classic: { config: base, iptables: true },
  'ipv4-interfaces-ranges-open': {
    config: { ...base, families: [4], interfaces: ['eth1', 'wg0'], intercept: [{ transport: 'tcp', ports: [{ from: 80, to: 80 }, { from: 8000, to: 8100 }] }], failMode: 'open' },
    iptables: false,
  },
  'local-traffic': {
    config: { ...base, intercept: [{ transport: 'tcp', ports: [{ from: 443, to: 443 }] }], interfaces: ['eth0'], localTraffic: { excludeUids: [0, 1000], excludeGids: [100] } },
    iptables: true,
  },
  'mangle-reject': {
    config: { ...base, families: [6], mangle: { mark: { value: 0x100, mask: 0xff00 }, dscp: 46, ttl: 64 }, failMode: 'reject' },
    iptables: false,
  },
  'mangle-drop': {
    config: { ...base, mangle: { mark: { value: 0x100, mask: 0xff00 }, dscp: 10, ttl: 32 } },
    iptables: true,
  },
  'custom-bypass-marks-many-ports': {
    config: {
      ...base,
      tableName: 'edge',
      listenPort: 15001,
      bypass: { destinations: ['10.0.0.0/8', '10.1.0.0/16', '2001:db8::/32'], sources: ['192.0.2.0/24', '2001:db8:1::/48'] },
      intercept: [{ transport: 'tcp', ports: Array.from({ length: 16 }, (_, i) => ({ from: 1000 + i * 10, to: 1000 + i * 10 + (i % 2) })) }],
      fwmark: 0x10000,
      fwmarkMask: 0xff0000,
      upstreamMark: 0x20000,
      routeTable: 4242,
      rulePriority: 100,
    },
    iptables: true,
  },
};

function compare(name: string, actual: string): void {
  const path = sourcePath(`core/rules/golden/${name}`);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
  }
  assert.equal(actual, readFileSync(path, 'utf8'), `${name} differs from its golden file (UPDATE_GOLDEN=1 to regenerate, then review)`);
}

describe('golden plans', () => {
  for (const [name, { config, iptables }] of Object.entries(CONFIGS)) {
    it(`${name}: nft script`, () => {
      compare(`${name}.nft`, renderNftScript(planRules(config)));
    });
    if (iptables) {
      it(`${name}: iptables-restore input`, () => {
        const plan = planRules(config);
        const text = plan.config.families.map((f) => `# ${f === 4 ? 'iptables' : 'ip6tables'}-restore --noflush\n${renderIptablesTransition(EMPTY_IPTABLES_STATE, plannedIptablesState(plan, f))}`).join('');
        compare(`${name}.iptables`, text);
      });
    }
  }
});

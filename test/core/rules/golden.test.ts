// Golden plans: the exact nft script, iptables-restore input and ip commands for a set of configurations.
// Regenerate after an intended change with UPDATE_GOLDEN=1 (then review the diff); a missing file
// fails unless UPDATE_GOLDEN=1 is set.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import { planRules } from '../../../src/core/rules/plan.js';
import { ipApplyCommands } from '../../../src/core/rules/policy-routing.js';
import { EMPTY_IPTABLES_STATE, plannedIptablesState, renderIptablesTransition } from '../../../src/core/rules/render-iptables.js';
import { renderNftScript } from '../../../src/core/rules/render-nft.js';
import { sourcePath } from '../../helpers/paths.js';
import { GOLDEN_CONFIGS as CONFIGS } from '../../helpers/rules-configs.js';

function compare(name: string, actual: string): void {
  const path = sourcePath(`core/rules/golden/${name}`);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
  }
  // A missing golden file fails: writing it here would make the first run pass whatever the plan says.
  assert.ok(existsSync(path), `test/core/rules/golden/${name} is missing: run with UPDATE_GOLDEN=1 to write it, then review it`);
  assert.equal(actual, readFileSync(path, 'utf8'), `${name} differs from its golden file (UPDATE_GOLDEN=1 to regenerate, then review)`);
}

describe('golden plans', () => {
  for (const [name, { config, iptables }] of Object.entries(CONFIGS)) {
    it(`${name}: nft script`, () => {
      compare(`${name}.nft`, renderNftScript(planRules(config)));
    });
    it(`${name}: ip commands`, () => {
      compare(`${name}.ip`, `${ipApplyCommands(planRules(config).policyRoutes).map((argv) => argv.join(' ')).join('\n')}\n`);
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

// Runs groups of differential scenarios in one lab, one test per scenario, in sequence.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DifferentialLab, type Scenario } from './differential.js';

export function differentialSuite(title: string, groups: readonly (readonly [string, readonly Scenario[]])[]): void {
  describe(title, () => {
    let dl: DifferentialLab;
    before(async () => {
      dl = await DifferentialLab.create();
    });
    after(() => dl.destroy());
    for (const [name, scenarios] of groups) {
      describe(name, () => {
        for (const s of scenarios) {
          it(s.name, async () => {
            const reports = await dl.run(s);
            const problems = reports.flatMap((r) => r.problems.map((p) => `probe ${r.probe.proto} ${r.probe.sport} -> ${r.probe.daddr}:${r.probe.dport}: ${p}`));
            assert.deepEqual(problems, []);
          });
        }
      });
    }
  });
}

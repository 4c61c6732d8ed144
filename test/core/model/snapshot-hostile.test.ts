// Hostile snapshots: damaged copies of a real one, fed to everything that reads a snapshot (the
// shape check, the world built from it, explain and doctor's checks): a clear TproxyError or an
// answer, never a TypeError.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isTproxyError } from '../../../src/core/errors.js';
import { explainPacket } from '../../../src/core/model/explain.js';
import { parsePacketText } from '../../../src/core/model/packet-text.js';
import { checkSnapshot, worldFromSnapshot } from '../../../src/core/model/snapshot.js';
import { FUZZ, damaged, onlyTproxyErrors } from '../../helpers/hostile.js';
import { sourcePath } from '../../helpers/paths.js';
import { doctorInput } from '../../../src/core/doctor/input.js';
import { diagnose } from '../../../src/core/doctor/report.js';
import { DEFAULT_RULES_CONFIG, DEFAULT_LISTENER_RULES } from '../../../src/core/rules/config.js';

const GOOD: unknown = JSON.parse(readFileSync(sourcePath('core/doctor/fixtures/healthy-router.snapshot.json'), 'utf8'));

const CONFIG = { ...DEFAULT_RULES_CONFIG, listeners: [{ ...DEFAULT_LISTENER_RULES, intercept: [{ transport: 'tcp' as const, ports: [{ from: 80, to: 80 }] }] }] };

describe('hostile snapshots', () => {
  for (const [field, value, message] of [
    ['iptables', null, /snapshot: "iptables" must be an object/],
    ['sockets', 123, /snapshot: "sockets" must be text/],
    ['errors', null, /snapshot: "errors" must be an object/],
    ['sysctls', [], /snapshot: "sysctls" must be an object/],
    ['ipRules', 'x', /snapshot: "ipRules" must be an object/],
  ] as const) {
    it(`refuses "${field}": ${JSON.stringify(value)} naming the field`, () => {
      assert.throws(() => checkSnapshot({ ...(GOOD as object), [field]: value }), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && message.test(e.message));
    });
  }

  it('reads a damaged snapshot into a world, or refuses it with the project\'s error', () => {
    const packet = parsePacketText('tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 syn').packet;
    fc.assert(
      fc.property(damaged(GOOD), (snapshot) => {
        onlyTproxyErrors(() => explainPacket(worldFromSnapshot(checkSnapshot(snapshot)), packet));
        onlyTproxyErrors(() => diagnose(doctorInput(checkSnapshot(snapshot), CONFIG, { apply: '', run: '' })));
      }),
      { ...FUZZ, numRuns: 80 },
    );
  });
});

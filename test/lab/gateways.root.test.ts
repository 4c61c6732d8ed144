// Two tproxy gateways behind an ECMP edge, announced by BIRD while /readyz is good: flows spread
// over both; a killed proxy is withdrawn and new flows reach the survivor within a measured bound,
// flows on the survivor lose nothing, only the dead gateway's break; a drain breaks nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gatewayAddresses, GatewayLab, type FlowReport } from '../../src/lab/gateways.js';
import { runTproxy } from '../helpers/tproxy-process.js';

/** New flows reach the survivor within this after a gateway's proxy is killed (measured: see the log line; under load 20+). */
const FAILOVER_BOUND_MS = 10_000;
const FLOWS = 40;

const via = (r: FlowReport, g: number): number => r.via[gatewayAddresses(g).toServer] ?? 0;

/** Open batches of 8 new flows until one batch all reaches gateway `g`; the ms from `since`. */
async function untilAllNewFlowsVia(lab: GatewayLab, g: number, since: number, boundMs: number): Promise<number> {
  for (let batch = 0; ; batch++) {
    const r = await lab.open(`probe${batch}`, 8, 1000);
    await lab.close(`probe${batch}`);
    if (r.failed === 0 && via(r, g) === 8) return performance.now() - since;
    assert.ok(performance.now() - since < boundMs, `new flows still failing or spread ${boundMs} ms after the change: ${JSON.stringify(r)}`);
  }
}

describe('gateways behind ECMP announced by BIRD (root)', { timeout: 300_000 }, () => {
  let lab: GatewayLab;
  before(async () => {
    lab = await GatewayLab.create(2);
  });
  after(() => lab?.destroy());

  it('spreads flows over both gateways', async () => {
    const r = await lab.open('spread', FLOWS);
    await lab.close('spread');
    assert.equal(r.failed, 0);
    // Fair hashing of 40 flows: fewer than 5 on either side has odds of about 1e-7.
    assert.ok(via(r, 1) >= 5 && via(r, 2) >= 5, `each gateway gets a share: ${JSON.stringify(r.via)}`);
  });

  it('withdraws a gateway whose proxy is killed: new flows reach the survivor, its flows lose nothing, only the dead one\'s break', async (t) => {
    const held = await lab.open('held', FLOWS);
    assert.equal(held.failed, 0);
    const [on1, on2] = [via(held, 1), via(held, 2)];
    assert.ok(on1 > 0 && on2 > 0, JSON.stringify(held.via));
    const killedAt = performance.now();
    await lab.killProxy(1);
    await lab.waitForNextHops(1, FAILOVER_BOUND_MS);
    const withdrawnMs = performance.now() - killedAt;
    const recoveredMs = await untilAllNewFlowsVia(lab, 2, killedAt, FAILOVER_BOUND_MS);
    t.diagnostic(`proxy killed: route withdrawn at the edge after ${Math.round(withdrawnMs)} ms, every new flow on the survivor after ${Math.round(recoveredMs)} ms (bound ${FAILOVER_BOUND_MS} ms)`);
    const after = await lab.check('held', 2000);
    assert.equal(via(after, 2), on2, 'every flow on the survivor still works');
    assert.equal(after.broken, on1, 'exactly the flows on the dead gateway broke');
    await lab.close('held');
    // Back in service for the next case.
    await lab.startProxy(1);
    t.diagnostic(`restarted: announced again after ${Math.round(await lab.waitForNextHops(2, 30_000))} ms`);
  });

  it('drains a gateway gracefully: withdrawn, new flows go to the other, nothing breaks', async (t) => {
    const held = await lab.open('held2', FLOWS);
    assert.equal(held.failed, 0);
    const on1 = via(held, 1);
    assert.ok(on1 > 0 && via(held, 2) > 0, JSON.stringify(held.via));
    const drained = await runTproxy(['drain', '--socket', lab.adminSocket(1)]);
    assert.equal(drained.code, 0, drained.stderr);
    // From the drain's answer (the CLI's own start, about a second under load, is not the routers' time).
    const drainedAt = performance.now();
    await lab.waitForNextHops(1, FAILOVER_BOUND_MS);
    const movedMs = await untilAllNewFlowsVia(lab, 2, drainedAt, FAILOVER_BOUND_MS);
    t.diagnostic(`drained: every new flow on the other gateway after ${Math.round(movedMs)} ms`);
    const after = await lab.check('held2', 2000);
    assert.deepEqual([after.ok, after.broken, via(after, 1)], [FLOWS, 0, on1], 'every flow in progress goes on, the drained gateway\'s included');
    await lab.close('held2');
    assert.equal((await runTproxy(['undrain', '--socket', lab.adminSocket(1)])).code, 0);
    await lab.waitForNextHops(2, 30_000);
  });
});

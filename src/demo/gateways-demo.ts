/**
 * `tproxy demo --gateways N`: N tproxy gateways behind an ECMP edge, announced by BIRD while
 * /readyz is good (see lab/gateways.ts). Shows flows spread over all of them, kills gateway 1's
 * proxy, and shows the edge withdrawing it and the survivors taking every new flow, while the
 * survivors' flows in progress go on.
 */
import { gatewayAddresses, GatewayLab, SERVICE, type FlowReport } from '../lab/gateways.js';

export interface GatewaysDemoResult {
  readonly gateways: number;
  readonly spread: Record<string, number>;
  readonly withdrawnMs: number;
  readonly newFlowsMovedMs: number;
  readonly after: Record<string, number>;
  readonly held: { readonly ok: number; readonly broken: number };
}

export async function runGatewaysDemo(gateways: number, report: (line: string) => void, onLab: (lab: GatewayLab) => void): Promise<GatewaysDemoResult> {
  report(`building: client, edge (BIRD, ECMP with L4 hashing), ${gateways} gateways (tproxy + BIRD, announcing ${SERVICE.prefix} while /readyz is good), server ${SERVICE.address}:${SERVICE.port}`);
  const lab = await GatewayLab.create(gateways);
  onLab(lab);
  try {
    const name = (address: string): string => (lab.gatewayOf(address) ? `gw${lab.gatewayOf(address)}` : address);
    const named = (r: FlowReport): Record<string, number> => Object.fromEntries(Object.entries(r.via).map(([a, n]): [string, number] => [name(a), n]).sort());
    report(`edge routes ${SERVICE.prefix} over ${(await lab.nextHops()).join(', ')}`);
    const held = await lab.open('held', 40);
    const spread = named(held);
    report(`40 flows opened and held: ${Object.entries(spread).map(([g, n]) => `${g} ${n}`).join(', ')}${held.failed ? ` (${held.failed} failed)` : ''}`);
    report(`killing gw1's tproxy (SIGKILL; its rules stay, fail closed)`);
    const killedAt = performance.now();
    await lab.killProxy(1);
    await lab.waitForNextHops(gateways - 1, 30_000);
    const withdrawnMs = Math.round(performance.now() - killedAt);
    report(`gw1 withdrawn: its /readyz stopped answering, the announcer removed the route, BIRD withdrew it; the edge routes over ${(await lab.nextHops()).join(', ')} after ${withdrawnMs} ms`);
    let moved: FlowReport;
    for (let batch = 0; ; batch++) {
      moved = await lab.open(`new${batch}`, 40, 1000);
      if ((moved.failed ?? 0) === 0 && !moved.via[gatewayAddresses(1).toServer]) break;
      await lab.close(`new${batch}`);
      if (performance.now() - killedAt > 30_000) break;
    }
    const newFlowsMovedMs = Math.round(performance.now() - killedAt);
    const after = named(moved);
    report(`40 new flows: ${Object.entries(after).map(([g, n]) => `${g} ${n}`).join(', ')}${moved.failed ? ` (${moved.failed} failed)` : ''} (${newFlowsMovedMs} ms after the kill)`);
    const check = await lab.check('held', 2000);
    report(`the 40 held flows: ${check.ok ?? 0} still work (${Object.entries(named({ via: check.via })).map(([g, n]) => `${g} ${n}`).join(', ')}), ${check.broken ?? 0} broke (those that were on gw1)`);
    return { gateways, spread, withdrawnMs, newFlowsMovedMs, after, held: { ok: check.ok ?? 0, broken: check.broken ?? 0 } };
  } finally {
    await lab.destroy();
  }
}

/** Building blocks of the differential scenarios (differential.ts): probes that follow their setup. */
import type { Observed, Probe, Scenario } from './differential.js';

/** A TCP flow to port 80 of `daddr` from `sport`; `socket`: the listener a delivered probe must reach. */
export interface FlowToPort80 {
  readonly sport: number;
  readonly daddr: string;
  readonly socket?: string;
}

/**
 * Each flow set up first, then probed again with the same addresses and ports, so the probe meets
 * what the setup left: held open (`hold`), the probe is a data segment of the established flow;
 * left in TIME_WAIT on the router (`time-wait`), the probe is a new SYN on that pair.
 */
export function probedAfterSetup(mode: 'hold' | 'time-wait', flows: readonly FlowToPort80[], expect: Observed): Pick<Scenario, 'setup' | 'probes'> {
  return {
    setup: flows.map(({ sport, daddr }) => ({ proto: 'tcp', sport, daddr, dport: 80, mode })),
    probes: flows.map(({ sport, daddr, socket }): Probe => ({ proto: 'tcp', sport, daddr, dport: 80, ...(mode === 'hold' ? { data: true } : {}), expect, ...(socket !== undefined ? { socket } : {}) })),
  };
}

/**
 * How many flows a TCP engine can hold: the descriptors of one flow (client and upstream sockets,
 * plus two pipes of two descriptors each for the splice engine) taken from the process's descriptor
 * budget once, at start. Capping below the budget means accepting pauses before accept() can fail
 * with EMFILE.
 */
import type { DescriptorBudget } from '../../sys/descriptor-budget.js';
import type { TcpEngineKind } from './engines.js';

export function descriptorsPerFlow(engine: TcpEngineKind): number {
  return engine === 'splice' ? 6 : 2;
}

/** The connection cap that fits `available` descriptors (at least one flow). Pure. */
export function connectionCap(requested: number, available: number, perFlow: number): number {
  return Math.max(1, Math.min(requested, Math.floor(available / perFlow)));
}

/**
 * Take the descriptors of up to `requested` flows from the budget: `share` of what is left for
 * TCP (a TCP worker process has its budget to itself; TCP in the daemon's process leaves room for
 * UDP). Returns the cap and a function that gives the descriptors back.
 */
export function reserveTcpFlows(budget: DescriptorBudget, requested: number, engine: TcpEngineKind, share = 1): { readonly maxConnections: number; readonly release: () => void } {
  const perFlow = descriptorsPerFlow(engine);
  const maxConnections = connectionCap(requested, Math.floor(budget.available('tcp') * share), perFlow);
  const taken = budget.acquire('tcp', maxConnections * perFlow) ? maxConnections * perFlow : 0;
  let released = false;
  return {
    maxConnections,
    release: () => {
      if (released || taken === 0) return;
      released = true;
      budget.release('tcp', taken);
    },
  };
}

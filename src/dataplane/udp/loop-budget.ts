/**
 * The descriptor budget as one UDP loop uses it: every entry the loop takes or gives back is also
 * counted in a slot of shared memory (the control array, protocol.ts: LOOP_BUDGET_HELD), so its
 * owner (relay.ts) knows what the loop holds at any moment.
 *
 * An orderly shutdown gives everything back itself. A loop that did not get there (its thread
 * terminated after the stop timeout, or a shutdown that threw half-way) leaves entries behind that
 * nobody else would give back: the budget would shrink by them for the life of the process, and a
 * later reload or restart of the UDP side would be refused or run with less. Once the loop's thread
 * has exited, its owner gives back what the slot still counts (reclaimLoopBudget).
 * Accounting only: no I/O here.
 */
import type { DescriptorBudget } from '../../sys/descriptor-budget.js';

/** What the loop asks of the budget (always as the 'udp' consumer). */
export type UdpLoopBudget = Pick<DescriptorBudget, 'acquire' | 'release' | 'available' | 'snapshot'>;

/** `budget`, with what is taken and given back also counted in `held[index]`. */
export function countedLoopBudget(budget: DescriptorBudget, held: Int32Array, index: number): UdpLoopBudget {
  return {
    acquire: (consumer, n = 1) => {
      if (!budget.acquire(consumer, n)) return false;
      Atomics.add(held, index, n);
      return true;
    },
    // Counted off first: a thread terminated between the two calls leaves one entry taken, never one given back twice.
    release: (consumer, n = 1) => {
      Atomics.sub(held, index, n);
      budget.release(consumer, n);
    },
    available: (consumer) => budget.available(consumer),
    snapshot: () => budget.snapshot(),
  };
}

/**
 * The loop's thread has exited: give back what it still held (nothing after an orderly shutdown)
 * and zero the count for the next loop. Returns how many entries were given back.
 */
export function reclaimLoopBudget(budget: DescriptorBudget, held: Int32Array, index: number): number {
  const n = Atomics.exchange(held, index, 0);
  if (n > 0) budget.release('udp', n);
  return n;
}

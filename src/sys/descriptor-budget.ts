/**
 * One descriptor budget per process, asked before a descriptor is taken, so running out of
 * descriptors is a counted refusal (or a UDP eviction) instead of EMFILE somewhere that cannot
 * handle it (a spawn of `nft` at stop, libuv reading the interfaces, an accept).
 *
 * The budget hands out `capacity` descriptors: the soft RLIMIT_NOFILE less the descriptors open
 * when it was made (stdio, the runtime's epoll and eventfds) and a slack for what nobody counts
 * (a worker thread's own loop, listeners, IPC channels, a file read). Of that capacity two
 * reserves are kept, so the lower priorities cannot starve the higher:
 *
 *   data plane (tcp, udp, mmproxy) and the admin and metrics servers   may use capacity - childReserve - stopReserve
 *   child processes (nft, ip)                                   may use capacity - stopReserve
 *   child processes once the daemon is stopping (rule removal)  may use everything
 *
 * The counts live in a SharedArrayBuffer (Atomics), so the UDP worker thread asks the same budget
 * as the main thread: `attach(buffer)` on the other side. TCP worker processes have a limit of
 * their own, so each makes its own budget. Accounting only: no I/O here.
 */

export const DESCRIPTOR_CONSUMERS = ['tcp', 'udp', 'child', 'admin', 'metrics', 'mmproxy'] as const;
export type DescriptorConsumer = (typeof DESCRIPTOR_CONSUMERS)[number];

/**
 * A spawned command with three stdio pipes: libuv makes a socketpair per pipe (the child's ends
 * close after the fork) and a pipe for the exec status; the parent keeps three until it exits.
 */
export const DESCRIPTORS_PER_CHILD = 8;
/** What nobody counts: a worker thread's event loop, listeners, IPC channels, a file being read. */
export const DESCRIPTOR_SLACK = 64;
/** Spawns (metrics scrapes, status, reload) that may run at once besides the rule removal. */
export const CONCURRENT_CHILDREN = 4;
/** Spawns kept for the rule removal at stop: it runs its commands one after another. */
export const STOP_CHILDREN = 2;

const CAPACITY = 0;
const CHILD_RESERVE = 1;
const STOP_RESERVE = 2;
const STOPPING = 3;
const USED = 4;
const USED_BY = 5;
const REFUSED_BY = USED_BY + DESCRIPTOR_CONSUMERS.length;
const SLOTS = REFUSED_BY + DESCRIPTOR_CONSUMERS.length;

export interface DescriptorBudgetSnapshot {
  readonly capacity: number;
  readonly inUse: number;
  readonly childReserve: number;
  readonly stopReserve: number;
  readonly byConsumer: { readonly [K in DescriptorConsumer]: { readonly inUse: number; readonly refused: number } };
}

export interface DescriptorBudgetOptions {
  /** The soft RLIMIT_NOFILE in force. */
  readonly limit: number;
  /** Descriptors open now (counted from /proc/self/fd by the caller). */
  readonly open: number;
  readonly slack?: number;
  readonly childReserve?: number;
  readonly stopReserve?: number;
}

export class DescriptorBudget {
  private readonly slots: Int32Array;

  private constructor(readonly buffer: SharedArrayBuffer) {
    this.slots = new Int32Array(buffer);
  }

  static create(options: DescriptorBudgetOptions): DescriptorBudget {
    const budget = new DescriptorBudget(new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT));
    const clamp = (n: number): number => Math.max(0, Math.min(0x7fff_ffff, Math.floor(n)));
    budget.slots[CAPACITY] = clamp(options.limit - options.open - (options.slack ?? DESCRIPTOR_SLACK));
    budget.slots[CHILD_RESERVE] = clamp(options.childReserve ?? CONCURRENT_CHILDREN * DESCRIPTORS_PER_CHILD);
    budget.slots[STOP_RESERVE] = clamp(options.stopReserve ?? STOP_CHILDREN * DESCRIPTORS_PER_CHILD);
    return budget;
  }

  /** The same budget, from another thread (the buffer was passed in its workerData). */
  static attach(buffer: SharedArrayBuffer): DescriptorBudget {
    return new DescriptorBudget(buffer);
  }

  /** Take n descriptors for `consumer` if its priority leaves room; false (counted) otherwise. */
  acquire(consumer: DescriptorConsumer, n = 1): boolean {
    const s = this.slots;
    const index = DESCRIPTOR_CONSUMERS.indexOf(consumer);
    const floor = consumer === 'child' ? (Atomics.load(s, STOPPING) === 1 ? 0 : Atomics.load(s, STOP_RESERVE)) : Atomics.load(s, CHILD_RESERVE) + Atomics.load(s, STOP_RESERVE);
    const ceiling = Atomics.load(s, CAPACITY) - floor;
    for (;;) {
      const used = Atomics.load(s, USED);
      if (used + n > ceiling) {
        Atomics.add(s, REFUSED_BY + index, 1);
        return false;
      }
      if (Atomics.compareExchange(s, USED, used, used + n) === used) break;
    }
    Atomics.add(s, USED_BY + index, n);
    return true;
  }

  /** Give back n descriptors `consumer` took. */
  release(consumer: DescriptorConsumer, n = 1): void {
    Atomics.sub(this.slots, USED, n);
    Atomics.sub(this.slots, USED_BY + DESCRIPTOR_CONSUMERS.indexOf(consumer), n);
  }

  /** The daemon is stopping: child processes (the rule removal) may use the last reserve. */
  stopping(): void {
    Atomics.store(this.slots, STOPPING, 1);
  }

  /** Descriptors `consumer` could take now. */
  available(consumer: DescriptorConsumer): number {
    const s = this.slots;
    const floor = consumer === 'child' ? (Atomics.load(s, STOPPING) === 1 ? 0 : s[STOP_RESERVE] ?? 0) : (s[CHILD_RESERVE] ?? 0) + (s[STOP_RESERVE] ?? 0);
    return Math.max(0, (s[CAPACITY] ?? 0) - floor - Atomics.load(s, USED));
  }

  snapshot(): DescriptorBudgetSnapshot {
    const s = this.slots;
    const byConsumer = Object.fromEntries(DESCRIPTOR_CONSUMERS.map((c, i) => [c, { inUse: Atomics.load(s, USED_BY + i), refused: Atomics.load(s, REFUSED_BY + i) }])) as DescriptorBudgetSnapshot['byConsumer'];
    return { capacity: s[CAPACITY] ?? 0, inUse: Atomics.load(s, USED), childReserve: s[CHILD_RESERVE] ?? 0, stopReserve: s[STOP_RESERVE] ?? 0, byConsumer };
  }
}

/**
 * The V8 heap limits of a TCP engine thread (the splice and uring engines' thread, started by
 * relay.ts): a young generation of 3 MiB, two semi-spaces of 1 MiB and the new large object space.
 *
 * V8's default grows the semi-spaces up to 8 MiB each when most objects survive a scavenge, which a
 * burst of accepted flows does (each flow's objects live as long as the flow), and keeps them after
 * the burst: with 5,000 idle flows per engine thread that was ~3.4 MiB more resident young
 * generation, and the bench's memory per idle connection fell from 2.16 to 1.53 KiB with this cap.
 * A scavenge costs what survives, not what was allocated: a flow's objects are promoted to the old
 * generation either way, and the per-event garbage dies young in a small space as in a big one.
 */
import type { ResourceLimits } from 'node:worker_threads';

export const ENGINE_THREAD_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 3 };

/**
 * How many flows a process can hold: two descriptors per flow (client and upstream) plus a reserve
 * for the runtime, listeners and IPC. Capping below the descriptor limit means accepting pauses
 * before accept() can fail with EMFILE (where libuv would accept and drop connections). Pure.
 */
export const RESERVED_DESCRIPTORS = 64;

export function connectionCap(requested: number, softFileLimit: number): number {
  return Math.max(1, Math.min(requested, Math.floor((softFileLimit - RESERVED_DESCRIPTORS) / 2)));
}

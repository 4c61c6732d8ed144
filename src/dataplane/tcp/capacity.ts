/**
 * How many flows a process can hold: the descriptors of one flow (client and upstream sockets,
 * plus two pipes for the splice engine) and a reserve for the runtime, listeners and IPC. Capping
 * below the descriptor limit means accepting pauses before accept() can fail with EMFILE. Pure.
 */
import type { TcpEngineKind } from './engines.js';

export const RESERVED_DESCRIPTORS = 64;

export function descriptorsPerFlow(engine: TcpEngineKind): number {
  return engine === 'splice' ? 6 : 2;
}

export function connectionCap(requested: number, softFileLimit: number, perFlow = 2): number {
  return Math.max(1, Math.min(requested, Math.floor((softFileLimit - RESERVED_DESCRIPTORS) / perFlow)));
}

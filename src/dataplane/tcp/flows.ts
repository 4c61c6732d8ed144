/** A TCP flow as the busiest-flows view shows it, and picking the busiest. Pure. */
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { TcpCounters } from './counters.js';

export interface TcpFlowSnapshot {
  /** The flow's number in its engine (unique per worker process, not across them). */
  readonly id: number;
  readonly client: Endpoint;
  readonly originalDestination: Endpoint;
  readonly bytesFromClient: number;
  readonly bytesFromServer: number;
  readonly ageMs: number;
  /** False while the upstream connect is in progress. */
  readonly connected: boolean;
  /** The TCP worker process that relays it (absent when TCP runs in the main process). */
  readonly pid?: number;
}

/** What a TCP engine answers a snapshot request with: its counters now and its busiest flows. */
export interface TcpSnapshot {
  readonly counters: TcpCounters;
  readonly flows: readonly TcpFlowSnapshot[];
}

/** Busiest-flow requests ask for at most this many. */
export const MAX_FLOWS_LIMIT = 1000;

const bytesOf = (f: Pick<TcpFlowSnapshot, 'bytesFromClient' | 'bytesFromServer'>): number => f.bytesFromClient + f.bytesFromServer;

/**
 * The `limit` items with the largest `key`, largest first (ties: first seen first). One pass that
 * keeps a sorted array of at most `limit`: no sort of every flow, no copy of them.
 */
export function topN<T>(items: Iterable<T>, limit: number, key: (item: T) => number): T[] {
  const top: { item: T; key: number }[] = [];
  if (limit <= 0) return [];
  for (const item of items) {
    const k = key(item);
    if (top.length === limit && k <= top[top.length - 1]!.key) continue;
    let at = top.length;
    while (at > 0 && top[at - 1]!.key < k) at--;
    top.splice(at, 0, { item, key: k });
    if (top.length > limit) top.pop();
  }
  return top.map((t) => t.item);
}

/** The busiest of several lists (one per worker), by bytes both ways. */
export function busiestFlows(lists: readonly (readonly TcpFlowSnapshot[])[], limit: number): TcpFlowSnapshot[] {
  return topN(lists.flat(), limit, bytesOf);
}

/** TCP relay counters: plain data, summed across listeners and worker processes. Pure. */
import { DEFAULT_ROUTE } from '../../core/route/table.js';
import type { RefusalReason } from '../events.js';

/** Flows and their bytes through one route or one outbound (bytes of flows in progress included in snapshots). */
export interface RoutedCounters {
  flows: number;
  bytesFromClient: number;
  bytesFromServer: number;
}


export interface TcpCounters {
  accepted: number;
  active: number;
  /** Connections refused before any upstream work, by reason. */
  refused: Record<RefusalReason, number>;
  /** Upstream connect failures by errno name (ECONNREFUSED, ETIMEDOUT, ...) or 'connect-timeout'. */
  connectErrors: Record<string, number>;
  /** Closed flows by how they ended ('done', 'idle-timeout', 'ECONNRESET', 'stopped', ...). */
  closed: Record<string, number>;
  bytesFromClient: number;
  bytesFromServer: number;
  /** Times accepting was paused at the connection cap or the descriptor limit. */
  acceptPauses: number;
  /** Transparent mode: the client's port was taken on this host, another port was used. */
  clientPortFallbacks: number;
  /**
   * Splice engine: directions of flows that waited in line for a pipe (every pair of the shared
   * pipes held: splice/pipe-pool.ts), and those waiting now (a gauge). 0 on the other engines.
   */
  pipeWaits: number;
  pipeWaiting: number;
  /**
   * Splice engine: pipe sizes the kernel refused (F_SETPIPE_SZ: EPERM past fs/pipe-user-pages-soft
   * without CAP_SYS_RESOURCE): those pipes keep the kernel's size, bulk transfers cost more CPU.
   */
  pipeResizesRefused: number;
  /** By route name (DEFAULT_ROUTE: no route matched); flows a reject outbound reset included. */
  routes: Record<string, RoutedCounters>;
  /** By outbound name. */
  outbounds: Record<string, RoutedCounters>;
  /**
   * Flows whose name was sniffed, by outcome: the protocol that gave it (tls, http), or why none
   * did (none: not TLS or HTTP, or no name in it; timeout: no answer within the sniff timeout;
   * closed: the client closed or sent its FIN first).
   */
  sniffs: Record<string, number>;
}

export function emptyTcpCounters(): TcpCounters {
  return {
    accepted: 0,
    active: 0,
    refused: { 'not-intercepted': 0, loop: 0, limit: 0 },
    connectErrors: {},
    closed: {},
    bytesFromClient: 0,
    bytesFromServer: 0,
    acceptPauses: 0,
    clientPortFallbacks: 0,
    pipeWaits: 0,
    pipeWaiting: 0,
    pipeResizesRefused: 0,
    routes: {},
    outbounds: {},
    sniffs: {},
  };
}

/** Closed reason of flows that a crashed worker held (its sockets closed with SO_LINGER 0: resets). */
export const WORKER_LOST = 'worker-lost';

/**
 * The counters of a worker that is gone: its open flows count as closed `worker-lost`, so
 * accepted = the sum of closed over every reason (nothing is active any more).
 */
export function retireTcpCounters(c: TcpCounters): { readonly counters: TcpCounters; readonly lost: number } {
  const lost = c.active;
  const closed = lost > 0 ? { ...c.closed, [WORKER_LOST]: (c.closed[WORKER_LOST] ?? 0) + lost } : c.closed;
  return { counters: { ...c, active: 0, pipeWaiting: 0, closed }, lost };
}

function addRouted(record: Record<string, RoutedCounters>, key: string, flows: number, fromClient: number, fromServer: number): void {
  const c = (record[key] ??= { flows: 0, bytesFromClient: 0, bytesFromServer: 0 });
  c.flows += flows;
  c.bytesFromClient += fromClient;
  c.bytesFromServer += fromServer;
}

/** Count a flow (flows 1, at its start) or its bytes (flows 0, as they are known) under its route and outbound. */
export function countRouted(counters: Pick<TcpCounters, 'routes' | 'outbounds'>, route: string | undefined, outbound: string, flows: number, fromClient = 0, fromServer = 0): void {
  addRouted(counters.routes, route ?? DEFAULT_ROUTE, flows, fromClient, fromServer);
  addRouted(counters.outbounds, outbound, flows, fromClient, fromServer);
}

/** A deep copy (snapshots must not share the live records). */
export function copyRouted(record: Record<string, RoutedCounters>): Record<string, RoutedCounters> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, { ...v }]));
}

function sumRouted(a: Record<string, RoutedCounters>, b: Record<string, RoutedCounters> | undefined): Record<string, RoutedCounters> {
  const out = copyRouted(a);
  for (const [k, v] of Object.entries(b ?? {})) addRouted(out, k, v.flows, v.bytesFromClient, v.bytesFromServer);
  return out;
}

export function increment(record: Record<string, number>, key: string, by = 1): void {
  record[key] = (record[key] ?? 0) + by;
}

function addRecords(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export function sumTcpCounters(list: readonly TcpCounters[]): TcpCounters {
  return list.reduce<TcpCounters>(
    (acc, c) => ({
      accepted: acc.accepted + c.accepted,
      active: acc.active + c.active,
      refused: addRecords(acc.refused, c.refused),
      connectErrors: addRecords(acc.connectErrors, c.connectErrors),
      closed: addRecords(acc.closed, c.closed),
      bytesFromClient: acc.bytesFromClient + c.bytesFromClient,
      bytesFromServer: acc.bytesFromServer + c.bytesFromServer,
      acceptPauses: acc.acceptPauses + c.acceptPauses,
      clientPortFallbacks: acc.clientPortFallbacks + c.clientPortFallbacks,
      pipeWaits: acc.pipeWaits + c.pipeWaits,
      pipeWaiting: acc.pipeWaiting + c.pipeWaiting,
      pipeResizesRefused: acc.pipeResizesRefused + (c.pipeResizesRefused ?? 0),
      routes: sumRouted(acc.routes, c.routes),
      outbounds: sumRouted(acc.outbounds, c.outbounds),
      sniffs: addRecords(acc.sniffs, c.sniffs ?? {}),
    }),
    emptyTcpCounters(),
  );
}

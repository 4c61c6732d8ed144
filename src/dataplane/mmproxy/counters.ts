/** What an mmproxy listener counts: headers accepted (PROXY or LOCAL), refused by reason, flows. */
export interface MmproxyCounters {
  /** Connections that sent a PROXY header with addresses: relayed from the client's address. */
  headersProxy: number;
  /** LOCAL (or v1 UNKNOWN / v2 AF_UNSPEC) headers: the balancer's own health checks. */
  headersLocal: number;
  /** Connections refused before any relay: source-not-allowed, header-timeout, the decoder's reasons. */
  readonly rejected: Record<string, number>;
  /** Backend connects that failed, by errno name or 'connect-timeout'. */
  readonly connectErrors: Record<string, number>;
  /** Relayed flows ended, by reason ('done' for a clean end both ways). */
  readonly closed: Record<string, number>;
  active: number;
  bytesFromClient: number;
  bytesFromBackend: number;
  /** Splice engine: pipe sizes the kernel refused (F_SETPIPE_SZ: EPERM past fs/pipe-user-pages-soft without CAP_SYS_RESOURCE). */
  pipeResizesRefused: number;
  /**
   * Splice engine: directions of flows that waited in line for a pipe (every pair of the thread's
   * shared pipes was held by flows with bytes in flight), since the start; and those waiting now.
   */
  pipeWaits: number;
  pipeWaiting: number;
}

export function emptyMmproxyCounters(): MmproxyCounters {
  return { headersProxy: 0, headersLocal: 0, rejected: {}, connectErrors: {}, closed: {}, active: 0, bytesFromClient: 0, bytesFromBackend: 0, pipeResizesRefused: 0, pipeWaits: 0, pipeWaiting: 0 };
}

export function count(table: Record<string, number>, key: string): void {
  table[key] = (table[key] ?? 0) + 1;
}

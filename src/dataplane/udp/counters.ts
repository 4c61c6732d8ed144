/**
 * The UDP relay's counters: one Float64Array slot each, in a SharedArrayBuffer the worker loop
 * writes and the main thread reads (one writer; each slot is a monotonic count, except
 * sessionsActive). Pure: layout and snapshot only.
 */

export const UDP_COUNTER_NAMES = [
  'sessionsActive',
  'sessionsCreated',
  'sessionsClosed',
  /** Sessions closed to make room, least recently used first: at the session cap or at the descriptor budget. */
  'sessionsEvicted',
  /** Of those, the ones closed because the process's descriptor budget was spent. */
  'sessionsEvictedForDescriptors',
  'sessionsExpired',
  /** Reply sockets opened (one per session in endpoint-dependent mode, one per remote otherwise). */
  'peersCreated',
  /** Remotes that reached a client unsolicited (endpoint-independent mapping only). */
  'peersInbound',
  /** Reply paths that could not bind the original destination (EADDRINUSE) and use the raw fallback. */
  'replyFallbacks',
  /** Datagrams found on a new reply socket that belonged to another client, handed to their own session. */
  'raceHandovers',
  'datagramsFromClients',
  'bytesFromClients',
  'datagramsFromServers',
  'bytesFromServers',
] as const;

/** Why a datagram was dropped or a session ended early. */
export const UDP_ERROR_REASONS = [
  /** ICMP port unreachable from the server (ECONNREFUSED on the connected upstream socket). */
  'upstream-refused',
  /** ICMP host / network unreachable toward the server. */
  'upstream-unreachable',
  /** The client's port is gone (ECONNREFUSED on its reply socket). */
  'client-refused',
  /** Send buffer toward the server full (EAGAIN / ENOBUFS): datagram dropped. */
  'upstream-busy',
  /** Send buffer toward the client full: datagram dropped. */
  'client-busy',
  /** Larger than the path allows (EMSGSIZE). */
  'message-too-big',
  'truncated',
  'no-original-destination',
  /** The original destination is an address of this host: relaying would loop. */
  'loop',
  'session-open-failed',
  /** No descriptor left in the budget and no session of this listener to evict: the datagram is dropped. */
  'descriptor-limit',
  /** A bind of the reply address failed with EADDRINUSE and the raw fallback could not be used. */
  'reply-fallback-failed',
  /** A datagram from an unexpected source on a connected socket. */
  'foreign-source',
  /** A remote beyond the per-session cap (endpoint-independent mapping). */
  'peer-limit',
  /**
   * A datagram from anyone but the original destination to a client's address and port
   * (endpoint-dependent mapping with upstream transparent): dropped by the client's guard socket.
   */
  'unsolicited',
  'other',
] as const;

export type UdpCounterName = (typeof UDP_COUNTER_NAMES)[number];
export type UdpErrorReason = (typeof UDP_ERROR_REASONS)[number];

export type UdpCounters = { [K in UdpCounterName]: number } & { readonly errors: { [K in UdpErrorReason]: number } };

export const UDP_COUNTER_INDEX = Object.fromEntries(UDP_COUNTER_NAMES.map((name, i) => [name, i])) as { readonly [K in UdpCounterName]: number };
export const UDP_ERROR_INDEX = Object.fromEntries(UDP_ERROR_REASONS.map((name, i) => [name, UDP_COUNTER_NAMES.length + i])) as { readonly [K in UdpErrorReason]: number };
export const UDP_COUNTER_SLOTS = UDP_COUNTER_NAMES.length + UDP_ERROR_REASONS.length;

export function createCounterBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(UDP_COUNTER_SLOTS * Float64Array.BYTES_PER_ELEMENT);
}

/** A plain-object copy of the counters. */
export function snapshotCounters(slots: Float64Array): UdpCounters {
  const counters = Object.fromEntries(UDP_COUNTER_NAMES.map((name) => [name, slots[UDP_COUNTER_INDEX[name]] ?? 0])) as { [K in UdpCounterName]: number };
  const errors = Object.fromEntries(UDP_ERROR_REASONS.map((reason) => [reason, slots[UDP_ERROR_INDEX[reason]] ?? 0])) as { [K in UdpErrorReason]: number };
  return { ...counters, errors };
}

/** errno name of a failed send/receive -> error reason. */
export function errorReasonOf(errno: string, toward: 'upstream' | 'client'): UdpErrorReason {
  switch (errno) {
    case 'ECONNREFUSED':
      return toward === 'upstream' ? 'upstream-refused' : 'client-refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return toward === 'upstream' ? 'upstream-unreachable' : 'other';
    case 'EAGAIN':
    case 'ENOBUFS':
      return toward === 'upstream' ? 'upstream-busy' : 'client-busy';
    case 'EMSGSIZE':
      return 'message-too-big';
    default:
      return 'other';
  }
}

/** Counters of several relays added up. */
export function sumUdpCounters(list: readonly UdpCounters[]): UdpCounters {
  const slots = new Float64Array(UDP_COUNTER_SLOTS);
  for (const c of list) {
    for (const name of UDP_COUNTER_NAMES) slots[UDP_COUNTER_INDEX[name]] = (slots[UDP_COUNTER_INDEX[name]] ?? 0) + c[name];
    for (const reason of UDP_ERROR_REASONS) slots[UDP_ERROR_INDEX[reason]] = (slots[UDP_ERROR_INDEX[reason]] ?? 0) + c.errors[reason];
  }
  return snapshotCounters(slots);
}

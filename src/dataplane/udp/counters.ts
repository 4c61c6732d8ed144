/**
 * The UDP relay's counters: one Float64Array slot each, in a SharedArrayBuffer the worker loop
 * writes and the main thread reads (one writer; each slot is a monotonic count, except
 * sessionsActive), then one block per route and per outbound of the relay's routing. Pure: layout
 * and snapshot only.
 */
import type { RoutingConfig } from '../../core/route/config.js';
import { DEFAULT_ROUTE } from '../../core/route/table.js';

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
  /** Flows whose first datagram was read for a QUIC Initial's server name (a route needed a name). */
  'quicSniffs',
  /** Of those, the ones that gave a name. */
  'quicNames',
  /** Sessions an operator ended (the dashboard's close): reported closed as closed-by-operator. */
  'sessionsClosedByOperator',
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
  /**
   * The flow's route leads to the reject outbound: the datagram is dropped. With endpoint-independent
   * mapping also a datagram from a new remote whose route (client -> remote) is reject.
   */
  'rejected',
  // A session through a socks5 outbound failed (see SOCKS5_FAILURE_REASONS in socks5-association.ts):
  'socks5-connect-failed',
  'socks5-refused',
  'socks5-auth-failed',
  'socks5-protocol',
  'socks5-timeout',
  'socks5-control-closed',
  /** A datagram from a SOCKS5 relay with FRAG != 0: fragments are dropped, never reassembled. */
  'socks5-fragmented',
  /** A datagram from a SOCKS5 relay whose header is not valid (or names a remote by name under full cone). */
  'socks5-bad-datagram',
  /** A datagram that came while its association was set up, past the queue's bound. */
  'socks5-queue-full',
  'other',
] as const;

export type UdpCounterName = (typeof UDP_COUNTER_NAMES)[number];
export type UdpErrorReason = (typeof UDP_ERROR_REASONS)[number];

/**
 * Per route and per outbound: sessions opened, datagrams rejected, sessions ended because their
 * outbound failed (a SOCKS5 association), datagrams and bytes each way.
 */
export const UDP_ROUTED_NAMES = ['sessions', 'rejected', 'failed', 'datagramsFromClients', 'bytesFromClients', 'datagramsFromServers', 'bytesFromServers'] as const;
export type UdpRoutedName = (typeof UDP_ROUTED_NAMES)[number];
export type UdpRoutedCounters = { [K in UdpRoutedName]: number };
export const UDP_ROUTED_INDEX = Object.fromEntries(UDP_ROUTED_NAMES.map((name, i) => [name, i])) as { readonly [K in UdpRoutedName]: number };

/**
 * The route and outbound names a relay counts under, in slot order after the fixed counters: known
 * when the relay starts (the names of its configuration), so the buffer can be shared memory.
 */
export interface UdpRoutedLayout {
  readonly routes: readonly string[];
  readonly outbounds: readonly string[];
}

export const NO_ROUTES: UdpRoutedLayout = { routes: [], outbounds: [] };

/** Every route of the routing and the default; every outbound a route or the default names. */
export function routedLayoutOf(routing: RoutingConfig): UdpRoutedLayout {
  return {
    routes: [...routing.routes.map((r) => r.name), DEFAULT_ROUTE],
    outbounds: [...new Set([...routing.routes.map((r) => r.outbound), routing.defaultOutbound.name])],
  };
}

/**
 * The layout after a reload: every name of `before` (sessions in progress keep counting under
 * their route and outbound, even one the new routing no longer has) and the new ones of `after`;
 * DEFAULT_ROUTE stays last.
 */
export function unionLayout(before: UdpRoutedLayout, after: UdpRoutedLayout): UdpRoutedLayout {
  const routes = [...new Set([...before.routes, ...after.routes])].filter((r) => r !== DEFAULT_ROUTE);
  return { routes: [...routes, DEFAULT_ROUTE], outbounds: [...new Set([...before.outbounds, ...after.outbounds])] };
}

/**
 * Copy every count of `from` (laid out as `fromLayout`) into `to` (laid out as `toLayout`, which
 * has every name of fromLayout): the fixed slots as they are, each route's and outbound's block
 * to the block of the same name. Run by the one writer (the loop), so nothing is counted twice or lost.
 */
export function migrateCounters(from: Float64Array, fromLayout: UdpRoutedLayout, to: Float64Array, toLayout: UdpRoutedLayout): void {
  to.set(from.subarray(0, UDP_COUNTER_SLOTS));
  const block = (at: number): Float64Array => from.subarray(at, at + UDP_ROUTED_NAMES.length);
  for (const [i, name] of fromLayout.routes.entries()) {
    const j = toLayout.routes.indexOf(name);
    if (j < 0) throw new Error(`udp counters: route ${name} missing from the new layout`);
    to.set(block(routeSlot(i)), routeSlot(j));
  }
  for (const [i, name] of fromLayout.outbounds.entries()) {
    const j = toLayout.outbounds.indexOf(name);
    if (j < 0) throw new Error(`udp counters: outbound ${name} missing from the new layout`);
    to.set(block(outboundSlot(fromLayout, i)), outboundSlot(toLayout, j));
  }
}

export type UdpCounters = { [K in UdpCounterName]: number } & {
  readonly errors: { [K in UdpErrorReason]: number };
  /** By route name (DEFAULT_ROUTE: no route matched). */
  readonly routes: Readonly<Record<string, UdpRoutedCounters>>;
  /** By outbound name. */
  readonly outbounds: Readonly<Record<string, UdpRoutedCounters>>;
};

export const UDP_COUNTER_INDEX = Object.fromEntries(UDP_COUNTER_NAMES.map((name, i) => [name, i])) as { readonly [K in UdpCounterName]: number };
export const UDP_ERROR_INDEX = Object.fromEntries(UDP_ERROR_REASONS.map((name, i) => [name, UDP_COUNTER_NAMES.length + i])) as { readonly [K in UdpErrorReason]: number };
export const UDP_COUNTER_SLOTS = UDP_COUNTER_NAMES.length + UDP_ERROR_REASONS.length;

/** First slot of route `i`'s block (add UDP_ROUTED_INDEX[name]). */
export function routeSlot(i: number): number {
  return UDP_COUNTER_SLOTS + i * UDP_ROUTED_NAMES.length;
}

/** First slot of outbound `i`'s block. */
export function outboundSlot(layout: UdpRoutedLayout, i: number): number {
  return routeSlot(layout.routes.length + i);
}

export function createCounterBuffer(layout: UdpRoutedLayout = NO_ROUTES): SharedArrayBuffer {
  return new SharedArrayBuffer(routeSlot(layout.routes.length + layout.outbounds.length) * Float64Array.BYTES_PER_ELEMENT);
}

function routed(slots: Float64Array, names: readonly string[], first: (i: number) => number): Record<string, UdpRoutedCounters> {
  return Object.fromEntries(names.map((name, i) => [name, Object.fromEntries(UDP_ROUTED_NAMES.map((k) => [k, slots[first(i) + UDP_ROUTED_INDEX[k]] ?? 0])) as UdpRoutedCounters]));
}

/** A plain-object copy of the counters. */
export function snapshotCounters(slots: Float64Array, layout: UdpRoutedLayout = NO_ROUTES): UdpCounters {
  const counters = Object.fromEntries(UDP_COUNTER_NAMES.map((name) => [name, slots[UDP_COUNTER_INDEX[name]] ?? 0])) as { [K in UdpCounterName]: number };
  const errors = Object.fromEntries(UDP_ERROR_REASONS.map((reason) => [reason, slots[UDP_ERROR_INDEX[reason]] ?? 0])) as { [K in UdpErrorReason]: number };
  return { ...counters, errors, routes: routed(slots, layout.routes, routeSlot), outbounds: routed(slots, layout.outbounds, (i) => outboundSlot(layout, i)) };
}

function sumRouted(list: readonly Readonly<Record<string, UdpRoutedCounters>>[]): Record<string, UdpRoutedCounters> {
  const out: Record<string, UdpRoutedCounters> = {};
  for (const record of list) {
    for (const [name, c] of Object.entries(record)) {
      const sum = (out[name] ??= Object.fromEntries(UDP_ROUTED_NAMES.map((k) => [k, 0])) as UdpRoutedCounters);
      for (const k of UDP_ROUTED_NAMES) sum[k] += c[k];
    }
  }
  return out;
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
  return { ...snapshotCounters(slots), routes: sumRouted(list.map((c) => c.routes)), outbounds: sumRouted(list.map((c) => c.outbounds)) };
}

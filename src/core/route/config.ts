/**
 * What a listener routes by, as plain data (it crosses to the TCP worker processes and the UDP
 * thread as is, and each compiles it once): its outbounds, the named lists its routes use, its
 * routes in order, and the default outbound of flows no route matches. Pure.
 */
import type { Transport } from '../net/constants.js';
import type { PortRange } from '../rules/config.js';
import type { EntryKind } from './entries.js';
import type { Outbound } from './outbound.js';

export interface ListSpec {
  readonly name: string;
  readonly kind: EntryKind;
  /** Canonical entries (see entries.ts), inline and from the file. */
  readonly entries: readonly string[];
}

export interface RouteSpec {
  readonly name: string;
  readonly outbound: string;
  readonly destinations: readonly string[];
  readonly destinationLists: readonly string[];
  readonly sources: readonly string[];
  readonly sourceLists: readonly string[];
  readonly ports: readonly PortRange[];
  readonly protocols: readonly Transport[];
  readonly listeners: readonly string[];
  readonly names: readonly string[];
  readonly nameLists: readonly string[];
}

export interface RoutingConfig {
  readonly listener: string;
  /** The outbound of flows no route matches. */
  readonly defaultOutbound: Outbound;
  /** Every outbound a route of this listener names (the default need not be here). */
  readonly outbounds: readonly Outbound[];
  readonly lists: readonly ListSpec[];
  /** The routes that can match this listener's flows, in order. */
  readonly routes: readonly RouteSpec[];
}

/** A route with no condition at all: it matches every flow. */
export function matchesEverything(route: RouteSpec): boolean {
  return (
    route.destinations.length + route.destinationLists.length + route.sources.length + route.sourceLists.length + route.ports.length + route.protocols.length + route.listeners.length + route.names.length + route.nameLists.length ===
    0
  );
}

export function usesNames(route: RouteSpec): boolean {
  return route.names.length > 0 || route.nameLists.length > 0;
}

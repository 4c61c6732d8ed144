/**
 * The route decision of one listener: its RoutingConfig compiled once (a PrefixSet per prefix
 * condition, a DomainSet per name condition, merged port ranges, a protocol bit mask), then for
 * each new flow the first route whose every condition holds, or the listener's default. Pure.
 *
 * Order of the checks within a route: protocol, port, destination, source, name (cheapest first;
 * all must hold, so the order changes the cost only). Addresses are parsed once per flow, and only
 * when a route looks at them.
 *
 * Names: a route with a name condition never matches a flow without a name. Before sniffing, the
 * data plane asks `decideUnnamed(flow)`: the decision, or 'sniff' when a name could change it, i.e.
 * when a route with a name condition, whose other conditions hold, comes before the first route
 * that matches without one. A flow to a destination an earlier address route already decides is
 * never delayed.
 */
import type { Transport } from '../net/constants.js';
import { type IpAddress, parseAddress } from '../net/address.js';
import { PrefixSet } from '../net/prefix-set.js';
import type { PortRange } from '../rules/config.js';
import { DomainSet } from '../sniff/domain-set.js';
import type { ListSpec, RouteSpec, RoutingConfig } from './config.js';
import { usesNames } from './config.js';
import type { Outbound } from './outbound.js';

/** What the decision looks at: one new flow (a TCP connection, or a UDP session's first datagram). */
export interface RouteFlow {
  readonly protocol: Transport;
  /** The client's address (`198.51.100.10`, `2001:db8::10`). */
  readonly source: string;
  /** The original destination's address and port. */
  readonly destination: string;
  readonly destinationPort: number;
  /** The name the client asked for (TLS SNI, HTTP Host, QUIC SNI), lower case; absent: none known. */
  readonly name?: string;
}

export interface RouteDecision {
  /** The route that matched; absent: none did, the listener's default outbound. */
  readonly route?: string;
  /** Position of that route in the configuration's routes (for explain). */
  readonly index?: number;
  readonly outbound: Outbound;
}

interface Keys {
  readonly destination?: IpAddress | undefined;
  readonly source?: IpAddress | undefined;
}

/** How flows no route matched are named in metrics and logs (no route may be named so). */
export const DEFAULT_ROUTE = 'default';

const PROTOCOL_BIT: Readonly<Record<Transport, number>> = { tcp: 1, udp: 2 };

interface CompiledRoute {
  readonly decision: RouteDecision;
  /** Bit mask of PROTOCOL_BIT; 0: any. */
  readonly protocols: number;
  /** Sorted, merged [from, to] pairs; absent: any port. */
  readonly ports?: Uint16Array;
  readonly destinations?: PrefixSet;
  readonly sources?: PrefixSet;
  readonly names?: DomainSet;
}

/** Sorted and merged port ranges as [from0, to0, from1, to1, ...]. */
function portTable(ranges: readonly PortRange[]): Uint16Array {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  const out: number[] = [];
  for (const r of sorted) {
    const last = out.length - 1;
    if (last > 0 && r.from <= (out[last] as number) + 1) out[last] = Math.max(out[last] as number, r.to);
    else out.push(r.from, r.to);
  }
  return Uint16Array.from(out);
}

function portIn(table: Uint16Array, port: number): boolean {
  let low = 0;
  let high = table.length / 2 - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    if (port < (table[2 * mid] as number)) high = mid - 1;
    else if (port > (table[2 * mid + 1] as number)) low = mid + 1;
    else return true;
  }
  return false;
}

/** Compiles the lists a table uses once each, however many routes name them. */
class ListCache {
  readonly #lists: ReadonlyMap<string, ListSpec>;
  readonly #prefixes = new Map<string, PrefixSet>();

  constructor(lists: readonly ListSpec[]) {
    this.#lists = new Map(lists.map((l) => [l.name, l]));
  }

  entries(name: string): readonly string[] {
    const list = this.#lists.get(name);
    if (!list) throw new Error(`route table: no list ${name}`);
    return list.entries;
  }

  prefixSet(inline: readonly string[], lists: readonly string[]): PrefixSet | undefined {
    if (inline.length === 0 && lists.length === 0) return undefined;
    const compiled = lists.map((name) => {
      let set = this.#prefixes.get(name);
      if (!set) this.#prefixes.set(name, (set = PrefixSet.from(this.entries(name))));
      return set;
    });
    return compiled.reduce((all, set) => all.union(set), PrefixSet.from(inline));
  }

  nameSet(inline: readonly string[], lists: readonly string[]): DomainSet | undefined {
    if (inline.length === 0 && lists.length === 0) return undefined;
    return DomainSet.from([...inline, ...lists.flatMap((name) => this.entries(name))]);
  }
}

export class RouteTable {
  readonly #routes: readonly CompiledRoute[];
  readonly #default: RouteDecision;
  readonly #looksAtDestination: boolean;
  readonly #looksAtSource: boolean;
  /** Whether any route matches on names: only then does the listener sniff. */
  readonly needsName: boolean;
  readonly listener: string;
  #last: { readonly source: string; readonly destination: string; readonly keys: Keys } | undefined;

  private constructor(config: RoutingConfig) {
    const outbounds = new Map(config.outbounds.map((o) => [o.name, o]));
    outbounds.set(config.defaultOutbound.name, config.defaultOutbound);
    const lists = new ListCache(config.lists);
    this.#routes = config.routes.map((route: RouteSpec, index) => {
      const outbound = outbounds.get(route.outbound);
      if (!outbound) throw new Error(`route table: route ${route.name} names no known outbound ${route.outbound}`);
      const destinations = lists.prefixSet(route.destinations, route.destinationLists);
      const sources = lists.prefixSet(route.sources, route.sourceLists);
      const names = lists.nameSet(route.names, route.nameLists);
      return {
        decision: { route: route.name, index, outbound },
        protocols: route.protocols.reduce((mask, p) => mask | PROTOCOL_BIT[p], 0),
        ...(route.ports.length > 0 ? { ports: portTable(route.ports) } : {}),
        ...(destinations ? { destinations } : {}),
        ...(sources ? { sources } : {}),
        ...(names ? { names } : {}),
      };
    });
    this.#default = { outbound: config.defaultOutbound };
    this.#looksAtDestination = this.#routes.some((r) => r.destinations);
    this.#looksAtSource = this.#routes.some((r) => r.sources);
    this.needsName = config.routes.some(usesNames);
    this.listener = config.listener;
  }

  static compile(config: RoutingConfig): RouteTable {
    return new RouteTable(config);
  }

  /** The listener's default: the decision of every flow when there are no routes. */
  get defaultDecision(): RouteDecision {
    return this.#default;
  }

  /** The first route whose every condition holds, else the listener's default. */
  decide(flow: RouteFlow): RouteDecision {
    const keys = this.#keys(flow);
    for (const route of this.#routes) {
      if (this.#addressesMatch(route, flow, keys) && (!route.names || (flow.name !== undefined && route.names.has(flow.name)))) return route.decision;
    }
    return this.#default;
  }

  /**
   * The decision of a flow whose name is not known yet, or 'sniff' when its name could change it
   * (see the header): the data plane then learns the name, or gives up on it, and calls decide.
   * Flows that need no name are decided here in one pass.
   */
  decideUnnamed(flow: RouteFlow): RouteDecision | 'sniff' {
    const keys = this.#keys(flow);
    for (const route of this.#routes) {
      if (this.#addressesMatch(route, flow, keys)) return route.names ? 'sniff' : route.decision;
    }
    return this.#default;
  }

  /**
   * The flow's addresses parsed for the prefix sets, once: the last flow's are kept, so decide
   * after decideUnnamed (a sniffed flow) parses nothing again.
   */
  #keys(flow: RouteFlow): Keys {
    const last = this.#last;
    if (last && last.source === flow.source && last.destination === flow.destination) return last.keys;
    const keys: Keys = {
      ...(this.#looksAtDestination ? { destination: parseAddress(flow.destination) } : {}),
      ...(this.#looksAtSource ? { source: parseAddress(flow.source) } : {}),
    };
    this.#last = { source: flow.source, destination: flow.destination, keys };
    return keys;
  }

  /** Every condition but the name. */
  #addressesMatch(route: CompiledRoute, flow: RouteFlow, keys: Keys): boolean {
    if (route.protocols !== 0 && (route.protocols & PROTOCOL_BIT[flow.protocol]) === 0) return false;
    if (route.ports && !portIn(route.ports, flow.destinationPort)) return false;
    if (route.destinations && !(keys.destination && route.destinations.has(keys.destination))) return false;
    return !route.sources || (keys.source !== undefined && route.sources.has(keys.source));
  }
}

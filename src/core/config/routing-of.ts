/**
 * The routing a validated TproxyConfig asks for, per listener, and its checks across sections as
 * config issues: every name a route or listener uses exists and is of the right kind, no route
 * that could match a UDP flow and no listener that intercepts UDP names an outbound that cannot
 * carry it, and no route hides behind one that matches everything. Pure.
 */
import { type Transport } from '../net/constants.js';
import { matchesEverything, type RouteSpec, type RoutingConfig } from '../route/config.js';
import { BUILT_IN_OUTBOUNDS, carries, type Outbound } from '../route/outbound.js';
import { DEFAULT_ROUTE } from '../route/table.js';
import type { ConfigIssue } from './schema.js';
import type { ListenerSettings } from './sections/listeners.js';
import { outboundOf } from './sections/outbounds.js';
import type { TproxyConfig } from './tproxy-config.js';

/** The outbound a listener's own settings give (outbound, else upstreamProxy, else upstream). */
function listenerOutbound(listener: ListenerSettings, outbounds: ReadonlyMap<string, Outbound>): Outbound | undefined {
  if (listener.outbound !== undefined) return outbounds.get(listener.outbound);
  if (listener.upstreamProxy) return { name: `${listener.name}-upstream-proxy`, kind: listener.upstreamProxy.protocol, proxy: listener.upstreamProxy };
  return outbounds.get(listener.upstream);
}

function outboundMap(config: TproxyConfig): Map<string, Outbound> {
  return new Map([...BUILT_IN_OUTBOUNDS, ...config.outbounds.map(outboundOf)].map((o) => [o.name, o]));
}

function appliesTo(route: RouteSpec, listener: ListenerSettings): boolean {
  return route.listeners.length === 0 || route.listeners.includes(listener.name);
}

function transportsOf(route: RouteSpec, listener: ListenerSettings): Transport[] {
  const intercepted = new Set(listener.intercept.map((s) => s.transport));
  return (['tcp', 'udp'] as const).filter((t) => intercepted.has(t) && (route.protocols.length === 0 || route.protocols.includes(t)));
}

/** Each listener's routing, in the order of config.listeners. */
export function routingOf(config: TproxyConfig): RoutingConfig[] {
  const outbounds = outboundMap(config);
  return config.listeners.map((listener) => {
    const routes = config.routes.filter((r) => appliesTo(r, listener));
    const listNames = new Set(routes.flatMap((r) => [...r.destinationLists, ...r.sourceLists, ...r.nameLists]));
    const used = new Set(routes.map((r) => r.outbound));
    const defaultOutbound = listenerOutbound(listener, outbounds);
    if (!defaultOutbound) throw new Error(`listener ${listener.name}: validated with an unknown outbound`);
    return {
      listener: listener.name,
      defaultOutbound,
      outbounds: [...outbounds.values()].filter((o) => used.has(o.name)),
      lists: config.lists.filter((l) => listNames.has(l.name)).map((l) => ({ name: l.name, kind: l.kind, entries: l.entries })),
      routes,
    };
  });
}

function duplicates(names: readonly string[], section: string, issues: ConfigIssue[]): void {
  for (const [i, name] of names.entries()) {
    const j = names.indexOf(name);
    if (j < i) issues.push({ path: [section, i, 'name'], message: `"${name}" is already the name of ${section}[${j}]: each needs its own name` });
  }
}

/** The checks across outbounds, lists, routes and listeners. */
export function checkRouting(config: TproxyConfig, issues: ConfigIssue[]): void {
  duplicates(config.outbounds.map((o) => o.name), 'outbounds', issues);
  duplicates(config.lists.map((l) => l.name), 'lists', issues);
  duplicates(config.routes.map((r) => r.name), 'routes', issues);
  const outbounds = outboundMap(config);
  const known = [...outbounds.keys()].join(', ');
  const lists = new Map(config.lists.map((l) => [l.name, l]));
  const listenerNames = config.listeners.map((l) => l.name);

  for (const [i, listener] of config.listeners.entries()) {
    if (listener.outbound !== undefined && !outbounds.has(listener.outbound)) {
      issues.push({ path: ['listeners', i, 'outbound'], message: `"${listener.outbound}" is not an outbound: use one of ${known}, or add it under outbounds` });
      continue;
    }
    const own = listener.outbound === undefined ? undefined : outbounds.get(listener.outbound);
    if (own && listener.intercept.some((s) => s.transport === 'udp') && !carries(own, 'udp')) {
      issues.push({ path: ['listeners', i, 'outbound'], message: `outbound ${own.name} carries TCP only, but this listener intercepts UDP: intercept tcp only here, or give UDP its own listener` });
    }
  }

  const everything = config.routes.findIndex(matchesEverything);
  for (const [i, route] of config.routes.entries()) {
    if (route.name === DEFAULT_ROUTE) issues.push({ path: ['routes', i, 'name'], message: `"${DEFAULT_ROUTE}" names the flows no route matches (in metrics and logs): give this route another name` });
    if (everything !== -1 && i > everything) {
      issues.push({ path: ['routes', i], message: `can never match: routes[${everything}] (${config.routes[everything]?.name ?? ''}) has no condition and matches every flow first; move it last or give it a condition` });
    }
    const outbound = outbounds.get(route.outbound);
    if (!outbound) issues.push({ path: ['routes', i, 'outbound'], message: `"${route.outbound}" is not an outbound: use one of ${known}, or add it under outbounds` });
    for (const [j, name] of route.listeners.entries()) {
      if (!listenerNames.includes(name)) issues.push({ path: ['routes', i, 'listeners', j], message: `"${name}" is not a listener: use one of ${listenerNames.join(', ')}` });
    }
    for (const [key, kind] of [['destinationLists', 'prefixes'], ['sourceLists', 'prefixes'], ['nameLists', 'names']] as const) {
      for (const [j, name] of route[key].entries()) {
        const list = lists.get(name);
        const ofKind = config.lists.filter((l) => l.kind === kind).map((l) => l.name);
        const hint = ofKind.length > 0 ? `use one of ${ofKind.join(', ')}` : `add a list of kind ${kind} under lists`;
        if (!list) issues.push({ path: ['routes', i, key, j], message: `"${name}" is not a list: ${hint}` });
        else if (list.kind !== kind) issues.push({ path: ['routes', i, key, j], message: `"${name}" is a list of ${list.kind}, ${key} needs ${kind}: ${hint}` });
      }
    }
    // A UDP flow routed to an outbound that cannot carry it would have to leave another way
    // (a leak past the proxy the route chose) or be lost: refused at load.
    const udp = config.listeners.find((l) => appliesTo(route, l) && transportsOf(route, l).includes('udp'));
    if (udp && outbound && !carries(outbound, 'udp')) {
      issues.push({ path: ['routes', i, 'outbound'], message: `outbound ${outbound.name} carries TCP only, but this route can match UDP flows of listener ${udp.name}: add protocols: [tcp], or route UDP to direct, transparent, socks5 or reject` });
    }
  }
}

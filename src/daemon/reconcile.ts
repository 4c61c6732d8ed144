/**
 * What a reload changes in the listeners, by name: those whose data-plane configuration is the
 * same keep running untouched; removed ones stop; added ones start; changed ones are replaced.
 * Two kinds of change are made on a running listener instead, so it is kept too:
 *   - per-flow events (debug logging), named in flowEventsSwitched;
 *   - routes and outbounds (and the sniff timeout and the listener's own outbound), named in
 *     routingSwitched: new flows take the new routes, flows and UDP sessions in progress keep the
 *     route and outbound they started with.
 * Pure.
 */
import { isDeepStrictEqual } from 'node:util';
import { ROUTING_SETTINGS, type ProxyConfig } from '../dataplane/proxy.js';

export interface ListenerChanges {
  readonly kept: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  /** Kept listeners whose per-flow events are switched in place; present only when there are any. */
  readonly flowEventsSwitched?: readonly string[];
  /** Kept listeners whose routes and outbounds are swapped in place; present only when there are any. */
  readonly routingSwitched?: readonly string[];
}

/** The configuration without what is switched in place. */
function restOf(config: ProxyConfig): Partial<ProxyConfig> {
  const rest: Partial<ProxyConfig> = { ...config, flowEvents: false };
  for (const key of ROUTING_SETTINGS) delete rest[key];
  return rest;
}

function routingOf(config: ProxyConfig): Partial<ProxyConfig> {
  return Object.fromEntries(ROUTING_SETTINGS.filter((key) => config[key] !== undefined).map((key) => [key, config[key]]));
}

export function listenerChanges(running: ReadonlyMap<string, ProxyConfig>, wanted: ReadonlyMap<string, ProxyConfig>): ListenerChanges {
  const kept: string[] = [];
  const added: string[] = [];
  const changed: string[] = [];
  const flowEventsSwitched: string[] = [];
  const routingSwitched: string[] = [];
  for (const [name, config] of wanted) {
    const old = running.get(name);
    if (!old) added.push(name);
    else if (isDeepStrictEqual(restOf(old), restOf(config))) {
      kept.push(name);
      if (old.flowEvents !== config.flowEvents) flowEventsSwitched.push(name);
      if (!isDeepStrictEqual(routingOf(old), routingOf(config))) routingSwitched.push(name);
    } else changed.push(name);
  }
  const removed = [...running.keys()].filter((name) => !wanted.has(name));
  return { kept, added, removed, changed, ...(flowEventsSwitched.length > 0 ? { flowEventsSwitched } : {}), ...(routingSwitched.length > 0 ? { routingSwitched } : {}) };
}

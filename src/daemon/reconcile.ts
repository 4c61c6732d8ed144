/**
 * What a reload changes in the listeners, by name: those whose data-plane configuration is the
 * same keep running untouched; removed ones stop; added ones start; changed ones are replaced.
 * Per-flow events (debug logging) are switched on a running listener, so a listener that differs
 * only in them is kept too, and named in flowEventsSwitched. Pure.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ProxyConfig } from '../dataplane/proxy.js';

export interface ListenerChanges {
  readonly kept: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  /** Kept listeners whose per-flow events are switched in place; present only when there are any. */
  readonly flowEventsSwitched?: readonly string[];
}

export function listenerChanges(running: ReadonlyMap<string, ProxyConfig>, wanted: ReadonlyMap<string, ProxyConfig>): ListenerChanges {
  const kept: string[] = [];
  const added: string[] = [];
  const changed: string[] = [];
  const flowEventsSwitched: string[] = [];
  for (const [name, config] of wanted) {
    const old = running.get(name);
    if (!old) added.push(name);
    else if (isDeepStrictEqual({ ...old, flowEvents: config.flowEvents }, config)) {
      kept.push(name);
      if (old.flowEvents !== config.flowEvents) flowEventsSwitched.push(name);
    } else changed.push(name);
  }
  const removed = [...running.keys()].filter((name) => !wanted.has(name));
  return { kept, added, removed, changed, ...(flowEventsSwitched.length > 0 ? { flowEventsSwitched } : {}) };
}

/** The rules configuration a validated TproxyConfig asks for, and its checks as config issues. Pure. */
import net from 'node:net';
import { isTproxyError } from '../errors.js';
import { mergeIntercepts } from './intercept.js';
import type { Family } from '../net/constants.js';
import { DEFAULT_BYPASS_DESTINATIONS, type ListenerRules, type RulesConfig } from '../rules/config.js';
import { validateRulesConfig } from '../rules/validate.js';
import type { ConfigIssue, PathSegment } from './schema.js';
import type { TproxyConfig } from './tproxy-config.js';

function addresses(texts: readonly string[]): ListenerRules['addresses'] {
  const out: { 4?: string; 6?: string } = {};
  for (const text of texts) out[net.isIPv4(text) ? 4 : 6] = text;
  return out;
}

/**
 * The rules `config` asks for; `draining` are listeners of an earlier configuration whose flows are
 * still finishing (their families stay installed for them).
 */
export function rulesConfigOf(config: TproxyConfig, draining: readonly ListenerRules[] = []): RulesConfig {
  const r = config.rules;
  const listeners = config.listeners.map((l) => ({ name: l.name, port: l.port, addresses: addresses(l.addresses), families: l.families, intercept: mergeIntercepts(l.intercept), upstreamMark: l.upstreamMark }));
  const families = ([4, 6] as const).filter((f) => [...listeners, ...draining].some((l) => l.families.includes(f))) as Family[];
  return {
    tableName: r.table,
    listeners,
    ...(draining.length > 0 ? { draining } : {}),
    families,
    interfaces: r.interfaces,
    bypass: { destinations: [...(r.bypass.defaultDestinations ? DEFAULT_BYPASS_DESTINATIONS : []), ...r.bypass.destinations], sources: r.bypass.sources },
    ...(r.local.enabled ? { localTraffic: { excludeUids: r.local.excludeUids, excludeGids: r.local.excludeGids } } : {}),
    mangle: { ...(r.mangle.mark ? { mark: r.mangle.mark } : {}), ...(r.mangle.dscp !== undefined ? { dscp: r.mangle.dscp } : {}), ...(r.mangle.ttl !== undefined ? { ttl: r.mangle.ttl } : {}) },
    failMode: r.failMode,
    fwmark: r.fwmark,
    fwmarkMask: r.fwmarkMask,
    routeTable: r.routeTable,
    rulePriority: r.rulePriority,
  };
}

/** RulesConfig field -> path in the file. */
const RULES_PATHS: Readonly<Record<string, string>> = {
  tableName: 'rules.table',
  'localTraffic.excludeUids': 'rules.local.excludeUids',
  'localTraffic.excludeGids': 'rules.local.excludeGids',
};

function pathOf(field: string): PathSegment[] {
  const text = field.startsWith('listeners') ? field : (RULES_PATHS[field] ?? `rules.${field}`);
  return text.split(/\.|(?=\[)/).map((s) => (s.startsWith('[') ? Number(s.slice(1, -1)) : s));
}

/** The checks of the rules planner (marks, overlaps, prefixes), as issues at their path in the file. */
export function checkRules(config: TproxyConfig, issues: ConfigIssue[]): void {
  try {
    validateRulesConfig(rulesConfigOf(config));
  } catch (error) {
    if (!isTproxyError(error, 'ERR_INVALID_ARGUMENT') || typeof error.details.field !== 'string') throw error;
    const field = error.details.field;
    issues.push({ path: pathOf(field), message: error.message.startsWith(`${field}: `) ? error.message.slice(field.length + 2) : error.message });
  }
}

/** The rules configuration a validated TproxyConfig asks for, and its checks as config issues. Pure. */
import net from 'node:net';
import { isTproxyError } from '../errors.js';
import { mergeIntercepts } from './intercept.js';
import type { Family } from '../net/constants.js';
import { DEFAULT_BYPASS_DESTINATIONS, type ListenerRules, type MmproxyBackend, type MmproxyRules, type RulesConfig } from '../rules/config.js';
import { validateRulesConfig } from '../rules/validate.js';
import type { ConfigIssue, PathSegment } from './schema.js';
import type { MmproxySettings } from './sections/mmproxy.js';
import type { TproxyConfig } from './tproxy-config.js';

function addresses(texts: readonly string[]): ListenerRules['addresses'] {
  const out: { 4?: string; 6?: string } = {};
  for (const text of texts) out[net.isIPv4(text) ? 4 : 6] = text;
  return out;
}

function isLoopback(address: string): boolean {
  return net.isIPv4(address) ? address.startsWith('127.') : address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/**
 * What the mmproxy listeners' replies need, per family: a fixed backend on loopback needs the
 * loopback rule, one elsewhere the divert; without a fixed backend the header's destination is
 * reached, which may be either, so both. `draining` are entries a reload removed or replaced whose
 * flows are still finishing: their replies keep their routing (and their upstream mark) until then.
 */
export function mmproxyRulesOf(config: TproxyConfig, draining: readonly MmproxySettings[] = []): MmproxyRules | undefined {
  const entries = [...config.mmproxy, ...draining];
  if (entries.length === 0) return undefined;
  const loopback = new Set<Family>();
  const divert = new Set<Family>();
  for (const l of entries) {
    for (const [family, backend] of [[4, l.backend4], [6, l.backend6]] as const) {
      if (!backend || isLoopback(backend.address)) loopback.add(family);
      if (!backend || !isLoopback(backend.address)) divert.add(family);
    }
  }
  const sorted = (s: Set<Family>): Family[] => ([4, 6] as const).filter((f) => s.has(f));
  const backends = config.mmproxy.flatMap((l) =>
    ([[4, l.backend4], [6, l.backend6]] as const).map(([family, b]): MmproxyBackend => ({ listener: l.name, transport: l.protocol, family, ...(b ? { address: b.address, port: b.port } : {}), upstreamMark: l.upstreamMark })),
  );
  return { loopback: sorted(loopback), divert: sorted(divert), transports: [...new Set(entries.map((l) => l.protocol))].sort(), upstreamMarks: [...new Set(entries.map((l) => l.upstreamMark))], backends };
}

/**
 * The rules `config` asks for; `draining` are listeners of an earlier configuration whose flows are
 * still finishing (their families stay installed for them), `drainingMmproxy` likewise for mmproxy
 * entries (their reply routing stays).
 */
export function rulesConfigOf(config: TproxyConfig, draining: readonly ListenerRules[] = [], drainingMmproxy: readonly MmproxySettings[] = []): RulesConfig {
  const r = config.rules;
  const listeners = config.listeners.map((l) => ({ name: l.name, port: l.port, addresses: addresses(l.addresses), families: l.families, intercept: mergeIntercepts(l.intercept), upstreamMark: l.upstreamMark }));
  const mmproxy = mmproxyRulesOf(config, drainingMmproxy);
  const families = ([4, 6] as const).filter((f) => [...listeners, ...draining].some((l) => l.families.includes(f)) || mmproxy?.loopback.includes(f) || mmproxy?.divert.includes(f)) as Family[];
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
    ...(mmproxy ? { mmproxy } : {}),
  };
}

/** RulesConfig field -> path in the file. */
const RULES_PATHS: Readonly<Record<string, string>> = {
  tableName: 'rules.table',
  'localTraffic.excludeUids': 'rules.local.excludeUids',
  'localTraffic.excludeGids': 'rules.local.excludeGids',
};

function pathOf(field: string): PathSegment[] {
  const text = field.startsWith('listeners') || field.startsWith('mmproxy') ? field : (RULES_PATHS[field] ?? `rules.${field}`);
  return text.split(/\.|(?=\[)/).map((s) => (s.startsWith('[') ? Number(s.slice(1, -1)) : s));
}

/** The checks of the rules planner (marks, overlaps, prefixes), as issues at their path in the file. */
export function checkRules(config: TproxyConfig, issues: ConfigIssue[]): void {
  try {
    validateRulesConfig(rulesConfigOf(config));
  } catch (error) {
    if (!isTproxyError(error, 'ERR_INVALID_ARGUMENT') || typeof error.details.field !== 'string') throw error;
    const field = error.details.field;
    const mark = error.details['upstreamMark'];
    if (field === 'mmproxy.upstreamMark' && typeof mark === 'number') {
      // The marks are planned once each: the issue goes to every entry that uses the mark.
      const message = error.message.slice(field.length + 2);
      const at = config.mmproxy.flatMap((l, i) => (l.upstreamMark === mark ? [i] : []));
      for (const i of at) issues.push({ path: ['mmproxy', i, 'upstreamMark'], message });
      if (at.length > 0) return;
    }
    issues.push({ path: pathOf(field), message: error.message.startsWith(`${field}: `) ? error.message.slice(field.length + 2) : error.message });
  }
}

/**
 * Rule planning: configuration in, the kernel state we want out. Pure: no I/O.
 *
 *   table inet <name>                            the one table we own, replaced atomically
 *     sets bypass_daddr4/6, bypass_saddr4/6      prefixes never intercepted (named: editable live)
 *     chain prerouting   type filter hook prerouting priority mangle
 *       meta mark <upstream> return               the proxy's own upstream packets: never again
 *       divert   (per family and transport)       packets of flows a transparent socket owns -> mark,
 *                                                 accept (TCP: not pure SYNs, so a SYN reusing a
 *                                                 TIME_WAIT pair reaches tproxy and the listener);
 *                                                 listeners draining after a reload keep theirs
 *       bypass   destination / source sets, fib daddr type { local, broadcast, multicast } -> return
 *       tproxy   (per family and transport)       tproxy to :<port>, mark, [mangle], counter, accept
 *                                                 (the counter follows tproxy: it only counts packets
 *                                                 that found a transparent socket)
 *       fail-closed (failMode drop/reject)        what tproxy did not take (no socket): drop/reject
 *     chain output       type route hook output priority mangle   (localTraffic only)
 *       upstream mark, excluded uids/gids, bypass -> return; matching packets get the fwmark, so
 *       they are rerouted through lo into prerouting, where the tproxy rules take them
 *   ip rule  fwmark <mark>/<mask> lookup <table> priority <p>   (per family)
 *   ip rule  from 127.0.0.0/8 iif lo lookup <table> priority <p> (mmproxy loopback backends; ::1/128 for IPv6)
 *   ip route local default dev lo table <table>                  (per family)
 *
 * mmproxy listeners (issue 16) add the divert rule of their transports and families (the replies of
 * a backend on another host), the return rule of their upstream mark, and the loopback rule.
 */
import type { Family } from '../net/constants.js';
import { bypassCidrs } from './cidr.js';
import { DEFAULT_RULES_CONFIG, type InterceptSpec, type ListenerRules, type RulesConfig, upstreamMarks } from './config.js';
import { FULL_MASK, hex } from './marks.js';
import { policyRoutesOf, type RulesRecord } from './record.js';
import type { Match, PlannedChain, PlannedRule, PlannedSet, RulesPlan, Statement } from './planned.js';
import { validateRulesConfig } from './validate.js';

export { DEFAULT_RULES_CONFIG };

export function setName(direction: 'saddr' | 'daddr', family: Family): string {
  return `bypass_${direction}${family}`;
}

function tproxyStatement(listener: ListenerRules, family: Family, mark: Extract<Statement, { type: 'tproxy' }>['mark']): Statement {
  const address = listener.addresses[family];
  return address === undefined ? { type: 'tproxy', family, port: listener.port, mark } : { type: 'tproxy', family, address, port: listener.port, mark };
}

/** Rule comments name the listener when there are several (comments are unique within a chain). */
function listenerSuffix(config: RulesConfig, listener: ListenerRules): string {
  return config.listeners.length > 1 ? ` (${listener.name})` : '';
}

function plannedSets(config: RulesConfig): PlannedSet[] {
  const sets: PlannedSet[] = [];
  for (const direction of ['daddr', 'saddr'] as const) {
    const texts = direction === 'daddr' ? config.bypass.destinations : config.bypass.sources;
    const field = direction === 'daddr' ? 'bypass.destinations' : 'bypass.sources';
    const cidrs = bypassCidrs(texts, field);
    for (const family of config.families) {
      sets.push({ name: setName(direction, family), family, direction, elements: cidrs.filter((c) => c.family === family) });
    }
  }
  return sets;
}

function bypassRules(config: RulesConfig, prefix: string): PlannedRule[] {
  const rules: PlannedRule[] = [];
  for (const direction of ['daddr', 'saddr'] as const) {
    for (const family of config.families) {
      rules.push({
        role: 'bypass',
        family,
        matches: [{ type: 'address-in-set', family, direction, set: setName(direction, family) }],
        statements: [],
        verdict: 'return',
        comment: `${prefix}bypass ${direction === 'daddr' ? 'destinations' : 'sources'} ipv${family}`,
      });
    }
  }
  rules.push({
    role: 'bypass',
    matches: [{ type: 'fib-daddr-type', types: ['local', 'broadcast', 'multicast'] }],
    statements: [],
    verdict: 'return',
    comment: `${prefix}bypass local, broadcast and multicast destinations`,
  });
  return rules;
}

function mangleStatements(config: RulesConfig, family: Family): Statement[] {
  const { mark, dscp, ttl } = config.mangle;
  return [
    ...(mark ? [{ type: 'mark-set', mark } as const] : []),
    ...(dscp !== undefined ? [{ type: 'dscp-set', family, value: dscp } as const] : []),
    ...(ttl !== undefined ? [{ type: 'ttl-set', family, value: ttl } as const] : []),
  ];
}

function upstreamReturn(config: RulesConfig, prefix: string): PlannedRule[] {
  const marks = upstreamMarks(config);
  return marks.map((mark) => ({
    role: 'upstream-return',
    matches: [{ type: 'mark', mark: { value: mark, mask: FULL_MASK } }],
    // Counted: proof that the proxy's own traffic went around the interception (no loop).
    statements: [{ type: 'counter' }],
    verdict: 'return',
    comment: `${prefix}upstream traffic of the proxy${marks.length > 1 ? ` mark ${hex(mark)}` : ''}`,
  }));
}

function preroutingChain(config: RulesConfig): PlannedChain {
  const fwmark = { value: config.fwmark, mask: config.fwmarkMask };
  // Draining listeners' transports too: their established flows reach their sockets only through divert.
  const transports = [...new Set([...[...config.listeners, ...(config.draining ?? [])].flatMap((l) => l.intercept.map((s) => s.transport)), ...(config.mmproxy?.transports ?? [])])];
  const iifnames = config.interfaces.length === 0 ? [] : [...new Set([...config.interfaces, ...(config.localTraffic ? ['lo'] : [])])];
  const iif: Match[] = iifnames.length === 0 ? [] : [{ type: 'iifname', names: iifnames }];
  const rules: PlannedRule[] = [...upstreamReturn(config, 'tproxy: ')];
  for (const family of config.families) {
    for (const transport of transports) {
      rules.push({
        role: 'divert',
        family,
        transport,
        matches: [{ type: 'nfproto', family }, transport === 'tcp' ? { type: 'tcp-not-syn' } : { type: 'l4proto', transport }, { type: 'socket-transparent' }],
        statements: [{ type: 'mark-set', mark: fwmark }, ...mangleStatements(config, family), { type: 'counter' }],
        verdict: 'accept',
        comment: `tproxy: divert ${transport} ipv${family}`,
      });
    }
  }
  rules.push(...bypassRules(config, 'tproxy: '));
  const selection = (family: Family, spec: InterceptSpec): Match[] => [...iif, { type: 'nfproto', family }, { type: 'dport', transport: spec.transport, ports: spec.ports }];
  for (const listener of config.listeners) {
    for (const family of listener.families) {
      for (const spec of listener.intercept) {
        rules.push({
          role: 'tproxy',
          family,
          transport: spec.transport,
          matches: selection(family, spec),
          statements: [tproxyStatement(listener, family, fwmark), ...mangleStatements(config, family), { type: 'counter' }],
          verdict: 'accept',
          comment: `tproxy: intercept ${spec.transport} ipv${family}${listenerSuffix(config, listener)}`,
        });
      }
    }
  }
  if (config.failMode !== 'open') {
    for (const listener of config.listeners) {
      for (const family of listener.families) {
        for (const spec of listener.intercept) {
          rules.push({
            role: 'fail-closed',
            family,
            transport: spec.transport,
            matches: selection(family, spec),
            statements: [{ type: 'counter' }],
            verdict: config.failMode,
            comment: `tproxy: fail closed ${spec.transport} ipv${family}${listenerSuffix(config, listener)}`,
          });
        }
      }
    }
  }
  return { name: 'prerouting', type: 'filter', hook: 'prerouting', priority: 'mangle', policy: 'accept', rules };
}

function outputChain(config: RulesConfig, local: NonNullable<RulesConfig['localTraffic']>): PlannedChain {
  const rules: PlannedRule[] = [...upstreamReturn(config, 'tproxy: local: ')];
  if (local.excludeUids.length > 0) rules.push({ role: 'local-exclude', matches: [{ type: 'skuid', ids: local.excludeUids }], statements: [], verdict: 'return', comment: 'tproxy: local: excluded users' });
  if (local.excludeGids.length > 0) rules.push({ role: 'local-exclude', matches: [{ type: 'skgid', ids: local.excludeGids }], statements: [], verdict: 'return', comment: 'tproxy: local: excluded groups' });
  rules.push(...bypassRules(config, 'tproxy: local: '));
  for (const listener of config.listeners) {
    for (const family of listener.families) {
      for (const spec of listener.intercept) {
        rules.push({
          role: 'local-reroute',
          family,
          transport: spec.transport,
          matches: [{ type: 'nfproto', family }, { type: 'dport', transport: spec.transport, ports: spec.ports }],
          statements: [{ type: 'mark-set', mark: { value: config.fwmark, mask: config.fwmarkMask } }, { type: 'counter' }],
          verdict: 'continue',
          comment: `tproxy: local: reroute ${spec.transport} ipv${family}${listenerSuffix(config, listener)}`,
        });
      }
    }
  }
  return { name: 'output', type: 'route', hook: 'output', priority: 'mangle', policy: 'accept', rules };
}

export function planRules(config: RulesConfig): RulesPlan {
  validateRulesConfig(config);
  const chains = [preroutingChain(config), ...(config.localTraffic ? [outputChain(config, config.localTraffic)] : [])];
  const loopback = config.families.filter((f) => config.mmproxy?.loopback.includes(f));
  const record: RulesRecord = {
    families: config.families,
    fwmark: config.fwmark,
    fwmarkMask: config.fwmarkMask,
    routeTable: config.routeTable,
    rulePriority: config.rulePriority,
    ...(loopback.length > 0 ? { loopback } : {}),
  };
  return { table: { family: 'inet', name: config.tableName, sets: plannedSets(config), chains }, policyRoutes: policyRoutesOf(record), record, config };
}

/** The same plan, recorded as owned by the `tproxy run` process `pid`. */
export function ownedBy(plan: RulesPlan, pid: number): RulesPlan {
  return { ...plan, record: { ...plan.record, owner: pid } };
}

/** Every rule of the plan with the chain it is in. */
export function plannedRules(plan: RulesPlan): { chain: PlannedChain; rule: PlannedRule }[] {
  return plan.table.chains.flatMap((chain) => chain.rules.map((rule) => ({ chain, rule })));
}

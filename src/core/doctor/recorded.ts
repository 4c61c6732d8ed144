/**
 * What our own table says about the configuration that applied it, for when no daemon can be
 * asked: the record in its comment (families, fwmark, route table, priority) and, from its rules,
 * each listener's port, families and intercepted ports (the tproxy rules), the upstream mark (the
 * `meta mark ... return` rule) and the fail mode (the fail-closed rules). Pure.
 */
import { formatIp } from '../net/address.js';
import type { Ruleset, Table, Value } from '../model/ruleset.js';
import type { Family, Transport } from '../net/constants.js';
import type { FailMode, ListenerRules, PortRange, RulesConfig } from '../rules/config.js';
import type { RulesRecord } from '../rules/record.js';

const INTERCEPT = /^tproxy: intercept (tcp|udp) ipv([46])(?: \(([\w-]+)\))?$/;

function portRanges(v: Value): PortRange[] {
  if (v.kind === 'number') return [{ from: v.value, to: v.value }];
  if (v.kind === 'range' && v.from.kind === 'number' && v.to.kind === 'number') return [{ from: v.from.value, to: v.to.value }];
  if (v.kind === 'set') return v.elements.flatMap(portRanges);
  return [];
}

function ourTable(ruleset: Ruleset, tableName: string): Table | undefined {
  return ruleset.tables.find((t) => t.origin === 'nft' && t.family === 'inet' && t.name === tableName);
}

/** The listeners our table's tproxy rules send traffic to, in rule order (empty when it has none). */
export function recordedListeners(ruleset: Ruleset, tableName: string, defaults: Omit<ListenerRules, 'intercept' | 'name'>): ListenerRules[] {
  const table = ourTable(ruleset, tableName);
  const byName = new Map<string, { port: number; addresses: { 4?: string; 6?: string }; families: Set<Family>; ports: Map<Transport, PortRange[]> }>();
  for (const chain of table?.chains ?? []) {
    for (const rule of chain.rules) {
      const m = INTERCEPT.exec(rule.comment ?? '');
      const tproxy = rule.expressions.find((e) => e.kind === 'tproxy');
      if (!m || tproxy?.kind !== 'tproxy' || tproxy.port === undefined) continue;
      const [transport, family, name = 'main'] = [m[1] as Transport, Number(m[2]) as Family, m[3]];
      const entry = byName.get(name) ?? { port: tproxy.port, addresses: {}, families: new Set<Family>(), ports: new Map<Transport, PortRange[]>() };
      entry.families.add(family);
      if (tproxy.addr) entry.addresses[family] = formatIp(tproxy.addr);
      const dport = rule.expressions.find((e) => e.kind === 'match' && e.left.kind === 'payload' && e.left.field === 'dport');
      const ranges = dport?.kind === 'match' ? portRanges(dport.right) : [];
      const known = entry.ports.get(transport) ?? [];
      entry.ports.set(transport, [...known, ...ranges.filter((r) => !known.some((k) => k.from === r.from && k.to === r.to))]);
      byName.set(name, entry);
    }
  }
  return [...byName].map(([name, e]) => ({
    ...defaults,
    name,
    port: e.port,
    addresses: e.addresses,
    families: [...e.families].sort(),
    intercept: [...e.ports].map(([transport, ports]) => ({ transport, ports })),
  }));
}

/** The defaults with what the record and our table's rules say laid over them. */
export function recordedConfig(ruleset: Ruleset, base: RulesConfig, record: RulesRecord): RulesConfig {
  const [first] = base.listeners;
  const table = ourTable(ruleset, base.tableName);
  const rules = table?.chains.flatMap((c) => c.rules) ?? [];
  const mark = rules.find((r) => /upstream traffic of the proxy$/.test(r.comment ?? ''))?.expressions.find((e) => e.kind === 'match' && e.left.kind === 'meta' && e.left.key === 'mark');
  const upstreamMark = mark?.kind === 'match' && mark.right.kind === 'number' ? mark.right.value : (first?.upstreamMark ?? 0x2);
  const listeners = first ? recordedListeners(ruleset, base.tableName, { ...first, upstreamMark }) : [];
  const closed = rules.filter((r) => /^tproxy: fail closed /.test(r.comment ?? ''));
  const failMode: FailMode = table === undefined ? base.failMode : closed.length === 0 ? 'open' : closed.some((r) => r.expressions.some((e) => e.kind === 'verdict' && e.verdict === 'reject')) ? 'reject' : 'drop';
  return {
    ...base,
    listeners: listeners.length > 0 ? listeners : base.listeners.map((l) => ({ ...l, families: record.families })),
    families: record.families,
    failMode,
    fwmark: record.fwmark,
    fwmarkMask: record.fwmarkMask,
    routeTable: record.routeTable,
    rulePriority: record.rulePriority,
  };
}

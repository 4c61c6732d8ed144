/**
 * Rule planning: configuration in, the kernel state we want out. Pure: no I/O.
 *
 * The plan is the classic TPROXY setup, made safe:
 *
 *   table inet <name>                       (the one table we own; replaced atomically)
 *     chain prerouting  type filter hook prerouting priority mangle
 *       meta mark <upstreamMark> return      our own upstream packets are never intercepted again
 *       divert: socket transparent 1 -> mark, accept   packets of flows the proxy already owns
 *               (TCP: not for pure SYNs, so a SYN that reuses a TIME_WAIT pair reaches tproxy)
 *       bypass: loopback, link-local, multicast, broadcast, local destinations -> return
 *       tproxy: per family and transport -> tproxy to :<listenPort>, mark, counter, accept
 *               (the counter follows tproxy: it only counts packets that found a transparent socket)
 *   ip rule  fwmark <mark>/<mask> lookup <table>    (IPv4 and IPv6, priority <rulePriority>)
 *   ip route local default dev lo table <table>      (IPv4 and IPv6)
 */
import { TproxyError } from '../errors.js';
import type { Family, Transport } from '../net/constants.js';

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

export interface InterceptSpec {
  readonly transport: Transport;
  readonly ports: readonly PortRange[];
}

export interface RulesConfig {
  /** Name of our nftables table (family inet). */
  readonly tableName: string;
  /** The local port the proxy listens on (TCP and UDP). */
  readonly listenPort: number;
  readonly families: readonly Family[];
  readonly intercept: readonly InterceptSpec[];
  /** Restrict interception to these incoming interfaces (empty: all). */
  readonly interfaces: readonly string[];
  /** fwmark set on intercepted packets; the policy rule routes it to the local table. */
  readonly fwmark: number;
  readonly fwmarkMask: number;
  /** SO_MARK of the proxy's upstream sockets; must not overlap fwmark under fwmarkMask. */
  readonly upstreamMark: number;
  readonly routeTable: number;
  readonly rulePriority: number;
}

export const DEFAULT_RULES_CONFIG: Omit<RulesConfig, 'intercept'> = {
  tableName: 'tproxy',
  listenPort: 8000,
  families: [4, 6],
  interfaces: [],
  fwmark: 0x1,
  fwmarkMask: 0x1,
  upstreamMark: 0x2,
  routeTable: 100,
  rulePriority: 9000,
};

/** What a rule is for; lets tests, `explain` and status find rules without parsing them. */
export type RuleRole = 'upstream-return' | 'divert' | 'bypass' | 'tproxy';

export interface PlannedRule {
  readonly role: RuleRole;
  readonly family?: Family;
  readonly transport?: Transport;
  /** nft rule text (statements), without the trailing comment. */
  readonly text: string;
  /** Comment attached to the rule in the kernel; unique within the table. */
  readonly comment: string;
}

export interface PlannedChain {
  readonly name: string;
  readonly type: 'filter' | 'route';
  readonly hook: 'prerouting' | 'output';
  readonly priority: 'mangle' | number;
  readonly policy: 'accept' | 'drop';
  readonly rules: readonly PlannedRule[];
}

export interface PolicyRoute {
  readonly family: Family;
  /** `ip rule add fwmark M/K lookup T priority P` */
  readonly rule: { readonly fwmark: number; readonly fwmarkMask: number; readonly table: number; readonly priority: number };
  /** `ip route add local <default> dev lo table T` */
  readonly route: { readonly type: 'local'; readonly destination: string; readonly device: 'lo'; readonly table: number };
}

export interface RulesPlan {
  readonly table: { readonly family: 'inet'; readonly name: string; readonly chains: readonly PlannedChain[] };
  readonly policyRoutes: readonly PolicyRoute[];
  readonly config: RulesConfig;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** nft expression that sets `mark` under `mask`, keeping the other bits of the packet mark. */
export function markSetExpression(mark: number, mask: number): string {
  if (mask >>> 0 === 0xffffffff) return `meta mark set ${hex(mark)}`;
  return `meta mark set meta mark and ${hex(~mask)} or ${hex(mark & mask)}`;
}

function portsExpression(ports: readonly PortRange[]): string {
  const items = ports.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`));
  return items.length === 1 ? items[0] ?? '' : `{ ${items.join(', ')} }`;
}

export function validateRulesConfig(config: RulesConfig): void {
  const bad = (field: string, why: string): never => {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `${field}: ${why}`, { field });
  };
  if (!/^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(config.tableName)) bad('tableName', `"${config.tableName}" must be a letter followed by letters, digits or _ (at most 31)`);
  if (!Number.isInteger(config.listenPort) || config.listenPort < 1 || config.listenPort > 65535) bad('listenPort', `${config.listenPort} must be a port from 1 to 65535`);
  if (config.families.length === 0) bad('families', 'at least one of IPv4 or IPv6 is needed');
  if (config.intercept.length === 0) bad('intercept', 'nothing to intercept: give at least one protocol and port, e.g. tcp:80');
  for (const spec of config.intercept) {
    if (spec.ports.length === 0) bad('intercept', `${spec.transport}: no ports given`);
    for (const p of spec.ports) {
      if (!Number.isInteger(p.from) || !Number.isInteger(p.to) || p.from < 1 || p.to > 65535 || p.from > p.to) {
        bad('intercept', `${spec.transport}:${p.from}-${p.to} is not a port or range within 1-65535`);
      }
    }
  }
  for (const name of config.interfaces) if (!/^[^\s/"]{1,15}$/.test(name)) bad('interfaces', `"${name}" is not an interface name`);
  if ((config.fwmark & config.fwmarkMask) === 0) bad('fwmark', `mark ${hex(config.fwmark)} has no bit inside mask ${hex(config.fwmarkMask)}`);
  if ((config.upstreamMark & config.fwmarkMask) === (config.fwmark & config.fwmarkMask)) {
    bad('upstreamMark', `upstream mark ${hex(config.upstreamMark)} matches the tproxy fwmark under mask ${hex(config.fwmarkMask)}: the proxy's own traffic would be routed back to itself; choose a mark that differs inside the mask`);
  }
  if (config.upstreamMark === 0) bad('upstreamMark', 'must be non-zero, or upstream sockets cannot be told apart');
  if (!Number.isInteger(config.routeTable) || config.routeTable < 1 || config.routeTable > 0xfffffff0 || [253, 254, 255].includes(config.routeTable)) {
    bad('routeTable', `${config.routeTable} must be a free table id (not 253 default, 254 main, 255 local)`);
  }
  if (!Number.isInteger(config.rulePriority) || config.rulePriority < 1 || config.rulePriority >= 32766) bad('rulePriority', `${config.rulePriority} must be from 1 to 32765 (before the main table's rule)`);
}

const BYPASS: Readonly<Record<Family, string>> = {
  4: 'ip daddr { 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4, 255.255.255.255 } return',
  6: 'ip6 daddr { ::1, fe80::/10, ff00::/8 } return',
};

export function planRules(config: RulesConfig): RulesPlan {
  validateRulesConfig(config);
  const mark = markSetExpression(config.fwmark, config.fwmarkMask);
  const iif = config.interfaces.length === 0 ? '' : `iifname { ${config.interfaces.map((n) => `"${n}"`).join(', ')} } `;
  const transports = new Set(config.intercept.map((s) => s.transport));
  const rules: PlannedRule[] = [
    { role: 'upstream-return', text: `meta mark ${hex(config.upstreamMark)} return`, comment: 'tproxy: upstream traffic of the proxy' },
  ];
  if (transports.has('tcp')) {
    rules.push({
      role: 'divert',
      transport: 'tcp',
      text: `meta l4proto tcp tcp flags & (syn | ack) != syn socket transparent 1 ${mark} counter accept`,
      comment: 'tproxy: divert tcp',
    });
  }
  if (transports.has('udp')) {
    rules.push({ role: 'divert', transport: 'udp', text: `meta l4proto udp socket transparent 1 ${mark} counter accept`, comment: 'tproxy: divert udp' });
  }
  for (const family of config.families) {
    rules.push({ role: 'bypass', family, text: BYPASS[family], comment: `tproxy: bypass ipv${family}` });
  }
  rules.push({ role: 'bypass', text: 'fib daddr type local return', comment: 'tproxy: bypass local destinations' });
  for (const family of config.families) {
    for (const spec of config.intercept) {
      rules.push({
        role: 'tproxy',
        family,
        transport: spec.transport,
        text: `${iif}meta nfproto ipv${family} meta l4proto ${spec.transport} ${spec.transport} dport ${portsExpression(spec.ports)} tproxy ip${family === 6 ? '6' : ''} to :${config.listenPort} ${mark} counter accept`,
        comment: `tproxy: intercept ${spec.transport} ipv${family}`,
      });
    }
  }
  return {
    table: {
      family: 'inet',
      name: config.tableName,
      chains: [{ name: 'prerouting', type: 'filter', hook: 'prerouting', priority: 'mangle', policy: 'accept', rules }],
    },
    policyRoutes: config.families.map((family) => ({
      family,
      rule: { fwmark: config.fwmark, fwmarkMask: config.fwmarkMask, table: config.routeTable, priority: config.rulePriority },
      route: { type: 'local', destination: family === 4 ? '0.0.0.0/0' : '::/0', device: 'lo', table: config.routeTable },
    })),
    config,
  };
}

/**
 * One nft script that replaces our table atomically: declaring the table first makes the delete
 * valid whether or not it exists, so applying twice gives the same state (idempotent).
 */
export function renderNftScript(plan: RulesPlan): string {
  const t = plan.table;
  const lines = [`table ${t.family} ${t.name} {}`, `delete table ${t.family} ${t.name}`, `table ${t.family} ${t.name} {`, `  comment "managed by tproxy; removed by tproxy rules cleanup"`];
  for (const chain of t.chains) {
    lines.push(`  chain ${chain.name} {`);
    lines.push(`    type ${chain.type} hook ${chain.hook} priority ${chain.priority}; policy ${chain.policy};`);
    for (const rule of chain.rules) lines.push(`    ${rule.text} comment "${rule.comment}"`);
    lines.push('  }');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** The nft script that removes our table (run only when it exists). */
export function renderNftDeleteScript(plan: Pick<RulesPlan, 'table'>): string {
  return `delete table ${plan.table.family} ${plan.table.name}\n`;
}

/** argv (after `ip`) that adds / deletes the policy rule and route of one family. */
export function ipRuleArgs(route: PolicyRoute, verb: 'add' | 'del'): string[] {
  return [`-${route.family}`, 'rule', verb, 'fwmark', `${hex(route.rule.fwmark)}/${hex(route.rule.fwmarkMask)}`, 'lookup', `${route.rule.table}`, 'priority', `${route.rule.priority}`];
}

export function ipRouteArgs(route: PolicyRoute, verb: 'replace' | 'del'): string[] {
  return [`-${route.family}`, 'route', verb, 'local', route.route.destination, 'dev', route.route.device, 'table', `${route.route.table}`];
}

/**
 * The plan as an nft script. Expressions are written the way nft lists them (its own
 * simplifications applied), so what we write is what `nft -j` reads back. Pure.
 */
import { formatCidr } from './cidr.js';
import type { PortRange } from './config.js';
import { FULL_MASK, hex, markSetOperation, type MarkBits } from './marks.js';
import { encodeRecord } from './record.js';
import type { Match, PlannedRule, PlannedSet, RulesPlan, Statement, Verdict } from './planned.js';

function list(items: readonly string[]): string {
  return items.length === 1 ? (items[0] ?? '') : `{ ${items.join(', ')} }`;
}

function portsText(ports: readonly PortRange[]): string {
  return list(ports.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)));
}

export function markSetText(mark: MarkBits): string {
  const op = markSetOperation(mark);
  if (op.assign !== undefined) return `meta mark set ${hex(op.assign)}`;
  const and = op.and !== undefined ? ` & ${hex(op.and)}` : '';
  const or = op.or !== undefined ? ` | ${hex(op.or)}` : '';
  return `meta mark set meta mark${and}${or}`;
}

function matchText(match: Match): string {
  switch (match.type) {
    case 'nfproto':
      return `meta nfproto ipv${match.family}`;
    case 'l4proto':
      return `meta l4proto ${match.transport}`;
    case 'iifname':
      return `iifname ${list(match.names.map((n) => `"${n}"`))}`;
    case 'dport':
      return `${match.transport} dport ${portsText(match.ports)}`;
    case 'mark':
      return match.mark.mask >>> 0 === FULL_MASK ? `meta mark ${hex(match.mark.value)}` : `meta mark & ${hex(match.mark.mask)} == ${hex(match.mark.value)}`;
    case 'tcp-not-syn':
      return 'tcp flags & (syn | ack) != syn';
    case 'socket-transparent':
      return 'socket transparent 1 socket wildcard 0';
    case 'address-in-set':
      return `${match.family === 4 ? 'ip' : 'ip6'} ${match.direction} @${match.set}`;
    case 'fib-daddr-type':
      return `fib daddr type ${list(match.types)}`;
    case 'skuid':
    case 'skgid':
      return `meta ${match.type} ${list(match.ids.map(String))}`;
  }
}

function statementText(statement: Statement): string {
  switch (statement.type) {
    case 'tproxy':
      return `tproxy ${statement.family === 4 ? 'ip' : 'ip6'} to ${statement.address === undefined ? '' : statement.family === 6 ? `[${statement.address}]` : statement.address}:${statement.port} ${markSetText(statement.mark)}`;
    case 'mark-set':
      return markSetText(statement.mark);
    case 'dscp-set':
      return `${statement.family === 4 ? 'ip' : 'ip6'} dscp set ${statement.value}`;
    case 'ttl-set':
      return statement.family === 4 ? `ip ttl set ${statement.value}` : `ip6 hoplimit set ${statement.value}`;
    case 'counter':
      return 'counter';
  }
}

function verdictText(verdict: Verdict, rule: Pick<PlannedRule, 'family' | 'transport'>): string {
  if (verdict === 'continue') return '';
  if (verdict !== 'reject') return verdict;
  if (rule.transport === 'tcp') return 'reject with tcp reset';
  return rule.family === 6 ? 'reject with icmpv6 port-unreachable' : 'reject with icmp port-unreachable';
}

/** The rule as nft text, with its comment. */
export function nftRuleText(rule: PlannedRule): string {
  const parts = [...rule.matches.map(matchText), ...rule.statements.map(statementText), verdictText(rule.verdict, rule)].filter((p) => p !== '');
  return `${parts.join(' ')} comment "${rule.comment}"`;
}

function setLines(set: PlannedSet): string[] {
  const elements = set.elements.length === 0 ? [] : [`    elements = { ${set.elements.map(formatCidr).join(', ')} }`];
  return [`  set ${set.name} {`, `    type ${set.family === 4 ? 'ipv4_addr' : 'ipv6_addr'}`, '    flags interval', ...elements, '  }'];
}

/** The table alone (no replace preamble). */
export function renderNftTable(plan: RulesPlan): string {
  const t = plan.table;
  const lines = [`table ${t.family} ${t.name} {`, `  comment "${encodeRecord(plan.record)}"`];
  for (const set of t.sets) lines.push(...setLines(set));
  for (const chain of t.chains) {
    lines.push(`  chain ${chain.name} {`);
    lines.push(`    type ${chain.type} hook ${chain.hook} priority ${chain.priority}; policy ${chain.policy};`);
    for (const rule of chain.rules) lines.push(`    ${nftRuleText(rule)}`);
    lines.push('  }');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/**
 * One nft script that replaces our table atomically: declaring the table first makes the delete
 * valid whether or not it exists, and the whole file is one transaction.
 */
export function renderNftScript(plan: RulesPlan): string {
  const { family, name } = plan.table;
  return `table ${family} ${name} {}\ndelete table ${family} ${name}\n${renderNftTable(plan)}`;
}

/**
 * The script that puts back a table as `nft list table` printed it before (rollback), or removes
 * ours when there was none.
 */
export function renderNftRestoreScript(family: string, name: string, previousListing: string | undefined): string {
  return `table ${family} ${name} {}\ndelete table ${family} ${name}\n${previousListing ?? ''}`;
}

/** The nft script that removes our table (run only when it exists). */
export function renderNftDeleteScript(plan: Pick<RulesPlan, 'table'>): string {
  return `delete table ${plan.table.family} ${plan.table.name}\n`;
}

/**
 * The plan for the iptables backend (hosts without nft): the same rules in the mangle table, in
 * chains of ours that built-in PREROUTING / OUTPUT jump to, written the way iptables-save prints
 * them so that status compares text. Applied with `iptables-restore --noflush`: one transaction per
 * family that touches only our chains and our jump rules. Pure.
 *
 *   -A PREROUTING -m comment --comment "tproxy v1 ..." -j TPROXY_PRE     (the record lives here)
 *   TPROXY_PRE     upstream mark -> RETURN; -m socket --transparent -> TPROXY_DIVERT;
 *                  bypass prefixes, -m addrtype --dst-type LOCAL,BROADCAST,MULTICAST -> RETURN;
 *                  selection -> [MARK, DSCP, TTL/HL,] TPROXY --on-port P --tproxy-mark M/K
 *                  (one rule per target: xt_TPROXY wants -p tcp|udp in its own rule)
 *   TPROXY_DIVERT  MARK, [DSCP, TTL/HL], ACCEPT
 *   TPROXY_OUT     (local traffic) upstream mark, owners, bypass -> RETURN; selection -> MARK
 *
 * Differences from nftables, by the nature of xt: TPROXY drops a packet for which no socket exists,
 * so fail-open cannot be expressed and fail-closed by drop needs no rule of its own; REJECT is not
 * allowed in the mangle table; the bypass sets become one rule per prefix (no ipset dependency);
 * rule counters count every match, not only packets that found a socket.
 */
import { TproxyError } from '../errors.js';
import type { Family } from '../net/constants.js';
import { formatCidr } from './cidr.js';
import { shortMark, type MarkBits } from './marks.js';
import { encodeRecord } from './record.js';
import type { ChainName, Match, PlannedRule, RulesPlan, Statement } from './planned.js';

export type BuiltinChain = 'PREROUTING' | 'OUTPUT';

export interface IptablesJump {
  readonly chain: BuiltinChain;
  readonly spec: string;
}

export interface IptablesChain {
  readonly name: string;
  readonly specs: readonly string[];
}

/** Our part of one family's mangle table. */
export interface IptablesState {
  readonly jumps: readonly IptablesJump[];
  readonly chains: readonly IptablesChain[];
}

const SUFFIXES = { prerouting: '_PRE', output: '_OUT', divert: '_DIVERT' } as const;
const MAX_CHAIN_NAME = 28;

export function chainPrefix(tableName: string): string {
  return tableName.toUpperCase();
}

/** Every chain name the iptables backend may create for this table name. */
export function ourChainNames(tableName: string): string[] {
  return Object.values(SUFFIXES).map((s) => `${chainPrefix(tableName)}${s}`);
}

const BUILTIN: Readonly<Record<ChainName, BuiltinChain>> = { prerouting: 'PREROUTING', output: 'OUTPUT' };

/** What the iptables backend cannot express, as errors that name the field. */
export function validateForIptables(plan: RulesPlan): void {
  const longest = Math.max(...Object.values(SUFFIXES).map((s) => s.length));
  if (plan.config.tableName.length + longest > MAX_CHAIN_NAME) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `tableName: "${plan.config.tableName}" is too long for iptables chain names (at most ${MAX_CHAIN_NAME - longest} characters with the iptables backend)`, { field: 'tableName' });
  }
  if (plan.config.failMode === 'open') {
    throw new TproxyError(
      'ERR_INVALID_ARGUMENT',
      'failMode: "open" cannot be done with the iptables backend: the xt TPROXY target drops packets when no proxy socket exists. Use --fail-mode drop, or the nftables backend (--backend nft) for fail-open',
      { field: 'failMode' },
    );
  }
  if (plan.config.failMode === 'reject') {
    throw new TproxyError('ERR_INVALID_ARGUMENT', 'failMode: "reject" cannot be done with the iptables backend: REJECT is not allowed in the mangle table. Use --fail-mode drop, or the nftables backend (--backend nft)', { field: 'failMode' });
  }
}

/** One alternative of a rule's selectors, in iptables-save's order: -s -d -i -p, then modules. */
interface Selector {
  readonly src?: string;
  readonly dst?: string;
  readonly iif?: string;
  readonly proto?: string;
  readonly modules: readonly string[];
}

function multiportChunks(items: readonly { from: number; to: number }[]): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let weight = 0;
  for (const p of items) {
    const w = p.from === p.to ? 1 : 2;
    if (weight + w > 15) {
      chunks.push(current.join(','));
      current = [];
      weight = 0;
    }
    current.push(p.from === p.to ? `${p.from}` : `${p.from}:${p.to}`);
    weight += w;
  }
  if (current.length > 0) chunks.push(current.join(','));
  return chunks;
}

/** `0x1/0x1`, mask always written (how MARK --set-xmark and TPROXY --tproxy-mark print). */
function valueMask(mark: MarkBits): string {
  return `0x${(mark.value >>> 0).toString(16)}/0x${(mark.mask >>> 0).toString(16)}`;
}

/** Each match turns one selector into zero or more (sets and interface lists become one rule per element). */
function applyMatch(selector: Selector, match: Match, plan: RulesPlan, family: Family): Selector[] {
  const add = (module: string, change: Partial<Selector> = {}): Selector[] => [{ ...selector, ...change, modules: [...selector.modules, module] }];
  switch (match.type) {
    case 'nfproto':
      return [selector];
    case 'l4proto':
      return [{ ...selector, proto: match.transport }];
    case 'iifname':
      return match.names.map((iif) => ({ ...selector, iif }));
    case 'dport': {
      const t = match.transport;
      const only = match.ports[0];
      if (match.ports.length === 1 && only) return add(`-m ${t} --dport ${only.from === only.to ? only.from : `${only.from}:${only.to}`}`, { proto: t });
      return multiportChunks(match.ports).flatMap((ports) => add(`-m multiport --dports ${ports}`, { proto: t }));
    }
    case 'mark':
      return add(`-m mark --mark ${shortMark(match.mark)}`);
    case 'tcp-not-syn':
      return add('-m tcp ! --tcp-flags SYN,ACK SYN', { proto: 'tcp' });
    case 'socket-transparent':
      return add('-m socket --transparent');
    case 'address-in-set': {
      const set = plan.table.sets.find((s) => s.name === match.set);
      return (set?.elements ?? []).map((cidr) => ({ ...selector, [match.direction === 'saddr' ? 'src' : 'dst']: formatCidr(cidr) }));
    }
    case 'fib-daddr-type': {
      // xt_addrtype refuses BROADCAST for IPv6 (there is no broadcast in IPv6).
      const types = match.types.filter((t) => family === 4 || t !== 'broadcast');
      return add(`-m addrtype --dst-type ${types.map((t) => t.toUpperCase()).join(',')}`);
    }
    case 'skuid':
    case 'skgid':
      return match.ids.map((id) => ({ ...selector, modules: [...selector.modules, `-m owner --${match.type === 'skuid' ? 'uid' : 'gid'}-owner ${id}`] }));
  }
}

function selectorText(s: Selector, comment: string): string {
  return [
    ...(s.src ? [`-s ${s.src}`] : []),
    ...(s.dst ? [`-d ${s.dst}`] : []),
    ...(s.iif ? [`-i ${s.iif}`] : []),
    ...(s.proto ? [`-p ${s.proto}`] : []),
    ...s.modules,
    `-m comment --comment "${comment}"`,
  ].join(' ');
}

/** Targets of a rule: the ones that let the packet go on first, then the terminal one. */
function targets(rule: PlannedRule): { nonTerminal: string[]; terminal?: string } {
  const nonTerminal: string[] = [];
  let terminal: string | undefined;
  const family = rule.family;
  for (const s of rule.statements as Statement[]) {
    switch (s.type) {
      case 'tproxy':
        terminal = `TPROXY --on-port ${s.port} --on-ip ${s.address ?? (s.family === 4 ? '0.0.0.0' : '::')} --tproxy-mark ${valueMask(s.mark)}`;
        break;
      case 'mark-set':
        nonTerminal.push(`MARK --set-xmark ${valueMask(s.mark)}`);
        break;
      case 'dscp-set':
        nonTerminal.push(`DSCP --set-dscp 0x${s.value.toString(16).padStart(2, '0')}`);
        break;
      case 'ttl-set':
        nonTerminal.push(s.family === 4 ? `TTL --ttl-set ${s.value}` : `HL --hl-set ${s.value}`);
        break;
      case 'counter':
        break;
    }
  }
  if (terminal === undefined && rule.verdict !== 'continue') {
    if (rule.verdict === 'reject') throw new TproxyError('ERR_INVALID_ARGUMENT', `failMode: reject is not possible in the iptables mangle table (rule "${rule.comment}")`, { field: 'failMode', family });
    terminal = rule.verdict.toUpperCase();
  }
  return { nonTerminal, ...(terminal !== undefined ? { terminal } : {}) };
}

/** Our chains and jumps for one family, as iptables-save prints them. */
export function plannedIptablesState(plan: RulesPlan, family: Family, record = plan.record): IptablesState {
  validateForIptables(plan);
  const prefix = chainPrefix(plan.config.tableName);
  const chains = new Map<string, string[]>();
  const jumps: IptablesJump[] = [];
  for (const chain of plan.table.chains) {
    const name = `${prefix}${chain.name === 'prerouting' ? SUFFIXES.prerouting : SUFFIXES.output}`;
    const specs: string[] = [];
    chains.set(name, specs);
    jumps.push({ chain: BUILTIN[chain.name], spec: `-m comment --comment "${encodeRecord(record)}" -j ${name}` });
    for (const rule of chain.rules) {
      if (rule.family !== undefined && rule.family !== family) continue;
      // xt TPROXY drops what finds no socket: the fail-closed drop rule would never be reached.
      if (rule.role === 'fail-closed' && rule.verdict === 'drop') continue;
      let selectors: Selector[] = [{ modules: [] }];
      for (const match of rule.matches) selectors = selectors.flatMap((s) => applyMatch(s, match, plan, family));
      const { nonTerminal, terminal } = targets(rule);
      const all = [...nonTerminal, ...(terminal !== undefined ? [terminal] : [])];
      if (all.length === 0) {
        for (const s of selectors) specs.push(selectorText(s, rule.comment));
      } else if (rule.role === 'divert' && all.length > 1) {
        // The classic DIVERT chain: the socket lookup once, then mark [, mangle] and accept.
        const divert = `${prefix}${SUFFIXES.divert}`;
        if (!chains.has(divert)) chains.set(divert, all.map((t) => `-m comment --comment "tproxy: divert" -j ${t}`));
        for (const s of selectors) specs.push(`${selectorText(s, rule.comment)} -j ${divert}`);
      } else {
        // One rule per target (TPROXY checks the protocol of its own rule, so they stay side by side).
        for (const s of selectors) for (const t of all) specs.push(`${selectorText(s, rule.comment)} -j ${t}`);
      }
    }
  }
  return { jumps, chains: [...chains].map(([name, specs]) => ({ name, specs })) };
}

/**
 * iptables-restore --noflush input that turns `from` (our part as it is live) into `to`, in one
 * transaction: chains declared (created or flushed), old jump rules deleted, new ones inserted
 * first in their built-in chain, rules appended, chains no longer wanted removed.
 */
export function renderIptablesTransition(from: IptablesState, to: IptablesState): string {
  const wanted = new Set(to.chains.map((c) => c.name));
  const stale = from.chains.filter((c) => !wanted.has(c.name)).map((c) => c.name);
  const lines = [
    '*mangle',
    ...to.chains.map((c) => `:${c.name} - [0:0]`),
    ...stale.map((name) => `-F ${name}`),
    ...from.jumps.map((j) => `-D ${j.chain} ${j.spec}`),
    ...[...to.jumps].reverse().map((j) => `-I ${j.chain} 1 ${j.spec}`),
    ...to.chains.flatMap((c) => c.specs.map((spec) => `-A ${c.name} ${spec}`)),
    ...stale.map((name) => `-X ${name}`),
    'COMMIT',
  ];
  return `${lines.join('\n')}\n`;
}

export const EMPTY_IPTABLES_STATE: IptablesState = { jumps: [], chains: [] };

/**
 * Live state against the plan, piece by piece: in place, missing, or drifted (present but not as
 * planned), plus anything in our table or chains that the plan does not have. Pure.
 */
import type { Family } from '../net/constants.js';
import { describeIpRoute, isPolicyRoute, isPolicyRule, type PolicyRoutingState } from './ip-json.js';
import { specComment } from '../iptables-dump.js';
import type { LiveIptables } from './iptables-state.js';
import { distinctRoutes, ipRouteArgs, ipRuleArgs } from './policy-routing.js';
import type { NftListing } from '../nft-listing.js';
import { expectedExpressions, plannedSetElements, ruleCounter, sameExpressions, setElements } from './nft-expected.js';
import { plannedIptablesState } from './render-iptables.js';
import type { RulesPlan } from './planned.js';

export type PieceState = 'in place' | 'missing' | 'drifted';

export interface PieceStatus {
  readonly kind: 'table' | 'set' | 'chain' | 'rule' | 'jump' | 'ip-rule' | 'ip-route';
  readonly name: string;
  readonly state: PieceState;
  /** What differs, for drifted pieces. */
  readonly detail?: string;
  readonly counter?: { readonly packets: number; readonly bytes: number };
}

export interface StatusReport {
  readonly pieces: readonly PieceStatus[];
  /** Live objects in our table or chains that the plan does not have. */
  readonly unexpected: readonly string[];
}

const PRIORITY_MANGLE = -150;

/** Our nft table (objects of other tables in `live` are ignored). */
export function nftStatus(plan: RulesPlan, live: NftListing): StatusReport {
  const { family, name } = plan.table;
  const mine = <T extends { family: string; table?: string; name?: string }>(o: T): boolean => o.family === family && (o.table ?? o.name) === name;
  const table = live.tables.find((t) => t.family === family && t.name === name);
  const pieces: PieceStatus[] = [{ kind: 'table', name: `table ${family} ${name}`, state: table ? 'in place' : 'missing' }];
  const unexpected: string[] = [];
  const sets = live.sets.filter(mine);
  for (const set of plan.table.sets) {
    const found = sets.find((s) => s.name === set.name);
    const wanted = plannedSetElements(set);
    const got = found ? setElements(found) : [];
    const type = set.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
    const detail = !found ? undefined : found.type !== type ? `type ${found.type}, wanted ${type}` : got.join(',') !== wanted.join(',') ? `elements { ${got.join(', ')} }, wanted { ${wanted.join(', ')} }` : undefined;
    pieces.push({ kind: 'set', name: `set ${set.name}`, state: !found ? 'missing' : detail ? 'drifted' : 'in place', ...(detail ? { detail } : {}) });
  }
  for (const s of sets) if (!plan.table.sets.some((p) => p.name === s.name)) unexpected.push(`set ${s.name}`);
  const chains = live.chains.filter(mine);
  const rules = live.rules.filter(mine);
  for (const chain of plan.table.chains) {
    const found = chains.find((c) => c.name === chain.name);
    const detail =
      found && (found.type !== chain.type || found.hook !== chain.hook || found.prio !== PRIORITY_MANGLE || found.policy !== chain.policy)
        ? `type ${found.type ?? '-'} hook ${found.hook ?? '-'} priority ${found.prio ?? '-'} policy ${found.policy ?? '-'}, wanted type ${chain.type} hook ${chain.hook} priority mangle policy ${chain.policy}`
        : undefined;
    pieces.push({ kind: 'chain', name: `chain ${chain.name}`, state: !found ? 'missing' : detail ? 'drifted' : 'in place', ...(detail ? { detail } : {}) });
    const liveRules = rules.filter((r) => r.chain === chain.name);
    let lastIndex = -1;
    for (const rule of chain.rules) {
      const index = liveRules.findIndex((r) => r.comment === rule.comment);
      const got = liveRules[index];
      const counter = got ? ruleCounter(got) : undefined;
      let state: PieceState = 'missing';
      let ruleDetail: string | undefined;
      if (got) {
        state = 'in place';
        if (!sameExpressions(got.expr, expectedExpressions(rule))) [state, ruleDetail] = ['drifted', 'its expressions differ from the plan'];
        else if (index < lastIndex) [state, ruleDetail] = ['drifted', 'out of order'];
        lastIndex = Math.max(lastIndex, index);
      }
      pieces.push({ kind: 'rule', name: `${chain.name}: ${rule.comment}`, state, ...(ruleDetail ? { detail: ruleDetail } : {}), ...(counter ? { counter } : {}) });
    }
    for (const r of liveRules) if (!chain.rules.some((p) => p.comment === r.comment)) unexpected.push(`rule in chain ${chain.name}, handle ${r.handle}${r.comment ? ` ("${r.comment}")` : ''}`);
  }
  for (const c of chains) if (!plan.table.chains.some((p) => p.name === c.name)) unexpected.push(`chain ${c.name}`);
  return { pieces, unexpected };
}

const withoutOwner = (spec: string): string => spec.replace(/ owner=\d+/, '');
const jumpTarget = (spec: string): string => spec.slice(spec.lastIndexOf('-j ') + 3);

/** Our chains and jump rules of one family's mangle table. */
export function iptablesStatus(plan: RulesPlan, family: Family, live: LiveIptables): StatusReport {
  const wanted = plannedIptablesState(plan, family);
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const pieces: PieceStatus[] = [];
  const unexpected: string[] = [];
  for (const jump of wanted.jumps) {
    const sameTarget = live.state.jumps.filter((j) => j.chain === jump.chain && jumpTarget(j.spec) === jumpTarget(jump.spec));
    const exact = sameTarget.some((j) => withoutOwner(j.spec) === withoutOwner(jump.spec));
    const state: PieceState = exact && sameTarget.length === 1 ? 'in place' : sameTarget.length > 0 ? 'drifted' : 'missing';
    const detail = state !== 'drifted' ? undefined : exact ? `present ${sameTarget.length} times` : `live: ${sameTarget[0]?.spec ?? ''}`;
    pieces.push({ kind: 'jump', name: `${tool} ${jump.chain} -j ${jumpTarget(jump.spec)}`, state, ...(detail ? { detail } : {}) });
  }
  for (const j of live.state.jumps) if (!wanted.jumps.some((w) => w.chain === j.chain && jumpTarget(w.spec) === jumpTarget(j.spec))) unexpected.push(`${tool} -A ${j.chain} ${j.spec}`);
  for (const chain of wanted.chains) {
    const found = live.state.chains.find((c) => c.name === chain.name);
    pieces.push({ kind: 'chain', name: `${tool} chain ${chain.name}`, state: found ? 'in place' : 'missing' });
    const liveSpecs = found?.specs ?? [];
    const counters = live.counters.get(chain.name) ?? [];
    const seen = new Map<string, number>();
    chain.specs.forEach((spec, i) => {
      const comment = specComment(spec) ?? spec;
      const n = (seen.get(comment) ?? 0) + 1;
      seen.set(comment, n);
      const at = liveSpecs.indexOf(spec);
      const counter = at >= 0 ? counters[at] : undefined;
      const differs = at < 0 && liveSpecs.some((s) => !chain.specs.includes(s) && specComment(s) === specComment(spec));
      const state: PieceState = liveSpecs[i] === spec ? 'in place' : at >= 0 || differs ? 'drifted' : 'missing';
      const detail = state !== 'drifted' ? undefined : differs ? 'a rule with this comment differs from the plan' : 'out of order';
      pieces.push({ kind: 'rule', name: `${tool} ${chain.name}: ${comment}${n > 1 ? ` #${n}` : ''}`, state, ...(detail ? { detail } : {}), ...(counter ? { counter } : {}) });
    });
    for (const s of liveSpecs) if (!chain.specs.includes(s)) unexpected.push(`${tool} -A ${chain.name} ${s}`);
  }
  for (const c of live.state.chains) if (!wanted.chains.some((w) => w.name === c.name)) unexpected.push(`${tool} chain ${c.name}`);
  return { pieces, unexpected };
}

/** The fwmark rules and local routes, per family. */
export function policyRoutingStatus(plan: RulesPlan, live: PolicyRoutingState): StatusReport {
  const pieces: PieceStatus[] = [];
  for (const route of plan.policyRoutes) {
    const copies = live.rules[route.family].filter((r) => isPolicyRule(r, route)).length;
    pieces.push({
      kind: 'ip-rule',
      name: `ip ${ipRuleArgs(route, 'add').filter((a) => a !== 'add').join(' ')}`,
      state: copies === 0 ? 'missing' : copies > 1 ? 'drifted' : 'in place',
      ...(copies > 1 ? { detail: `present ${copies} times` } : {}),
    });
  }
  for (const route of distinctRoutes(plan.policyRoutes)) {
    const inTable = live.routes[route.family].filter((r) => (r.table ?? '254') === `${route.route.table}`);
    const ours = inTable.some((r) => isPolicyRoute(r, route));
    const others = inTable.filter((r) => !isPolicyRoute(r, route));
    pieces.push({
      kind: 'ip-route',
      name: `ip ${ipRouteArgs(route, 'add').filter((a) => a !== 'add').join(' ')}`,
      state: ours ? 'in place' : others.length > 0 ? 'drifted' : 'missing',
      ...(!ours && others.length > 0 ? { detail: `table ${route.route.table} has ${others.map((r) => describeIpRoute(route.family, r)).join('; ')} instead` } : {}),
    });
  }
  return { pieces, unexpected: [] };
}

export function allInPlace(reports: readonly StatusReport[]): boolean {
  return reports.every((r) => r.pieces.every((p) => p.state === 'in place') && r.unexpected.length === 0);
}

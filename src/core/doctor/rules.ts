/**
 * Our rules against the plan (the same status `tproxy rules status` shows), and what other rules
 * on the host do to them: mark collisions, divert rules that also catch SYNs, fail-open exposure,
 * and the proxy's own upstream traffic looping back into it (checked with the model).
 */
import { parseIptablesDump, specTokens, type IptablesRule } from '../iptables-dump.js';
import { explainPacket } from '../model/explain.js';
import { formatTrace } from './trace-text.js';
import { TCP_FLAGS, type Packet } from '../model/packet.js';
import type { Match, Rule } from '../model/ruleset.js';
import { markUsageFromNft } from '../rules/mark-usage.js';
import { marksCollide, sharedBits, shortMark } from '../rules/marks.js';
import { plannedRules } from '../rules/plan.js';
import { chainPrefix } from '../rules/render-iptables.js';
import { nftRuleText } from '../rules/render-nft.js';
import type { PlannedChain, PlannedRule } from '../rules/planned.js';
import { nftStatus } from '../rules/status.js';
import { finding, type Finding } from './finding.js';
import { shellWord, type DoctorInput } from './input.js';
import { probeSites } from './probe-packets.js';

/** `nft add rule` that puts a missing planned rule back where the plan has it. */
export function restoreRuleCommand(input: DoctorInput, chain: PlannedChain, rule: PlannedRule): string {
  const { family, name } = input.plan.table;
  const index = chain.rules.indexOf(rule);
  const live = input.nft.rules.filter((r) => r.family === family && r.table === name && r.chain === chain.name);
  const before = chain.rules.slice(0, index).reverse().map((p) => live.find((r) => r.comment === p.comment)).find((r) => r !== undefined);
  const text = shellWord(nftRuleText(rule));
  return before ? `nft add rule ${family} ${name} ${chain.name} position ${before.handle} ${text}` : `nft insert rule ${family} ${name} ${chain.name} ${text}`;
}

function ruleId(input: DoctorInput, chain: PlannedChain, rule: PlannedRule, local: boolean): { id: string; severity: 'fail' | 'warn'; why: string } {
  if (rule.role === 'divert' && input.upstream === 'transparent') return { id: 'rules.divert', severity: 'fail', why: 'the servers\' replies to the proxy\'s upstream sockets (bound to client addresses with --upstream transparent) are not marked local: they are forwarded to the clients past the proxy' };
  if (rule.role === 'divert') return { id: 'rules.divert', severity: 'warn', why: 'packets of flows the proxy already owns go through the tproxy rule\'s socket lookup instead (slower); with --upstream transparent the servers\' replies would be forwarded past the proxy' };
  if (rule.role === 'upstream-return' && (chain.name === 'output' || local)) return { id: 'rules.upstream-loop', severity: 'fail', why: 'the proxy\'s own upstream traffic is not excluded: it is rerouted back into the proxy (a loop that ends in exhausted file descriptors)' };
  if (rule.role === 'upstream-return') return { id: 'rules.upstream-return', severity: 'warn', why: 'the proxy\'s own upstream packets are not excluded in prerouting; harmless unless they come back through lo' };
  return { id: 'rules.missing', severity: 'fail', why: `without it ${rule.role === 'fail-closed' ? 'intercepted traffic bypasses the proxy while it is down' : rule.role === 'bypass' ? 'traffic that must never be intercepted is' : 'traffic is not intercepted as configured'}` };
}

function ourRules(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const { plan, commands } = input;
  const table = `${plan.table.family} ${plan.table.name}`;
  if (input.rulesBy === 'others') {
    const where = [...new Set(input.foreign.map((r) => r.where.replace(/ (rule|handle) \d+$/, '')))];
    const seen = where.length > 0 ? `the TPROXY rules in force are not tproxy's: ${where.join(', ')}` : 'tproxy does not manage the rules here (rules.apply: false), and no TPROXY rule is in force';
    return [finding('rules', 'rules.table', 'pass', seen, 'rules written by others are judged by what they do: the routing and the probes below follow packets through them')];
  }
  if (!input.ours.table) {
    const chain = `${chainPrefix(plan.config.tableName)}_PRE`;
    const texts = [input.snapshot.iptables.ipv4, input.snapshot.iptablesLegacy?.ipv4];
    if (texts.some((t) => new RegExp(`^:${chain} `, 'm').test(t ?? ''))) {
      return [finding('rules', 'rules.table', 'pass', `iptables mangle chain ${chain} (iptables backend)`, 'our rules are loaded; `tproxy rules status --backend iptables` compares them piece by piece, the probes below follow packets through them')];
    }
    if (input.snapshot.nft === null || input.snapshot.nft === undefined) return out;
    return [finding('rules', 'rules.table', 'fail', `table ${table} does not exist`, 'nothing intercepts traffic: it is forwarded past the proxy', commands.apply)];
  }
  out.push(finding('rules', 'rules.table', 'pass', `table ${table}${input.ours.record?.owner !== undefined ? `, applied by tproxy run pid ${input.ours.record.owner}` : ''}`, 'our rules are loaded'));
  const status = nftStatus(plan, input.nft);
  const local = plan.config.localTraffic !== undefined;
  for (const piece of status.pieces) {
    if (piece.kind === 'table' || piece.state === 'in place') continue;
    if (piece.kind !== 'rule') {
      out.push(finding('rules', 'rules.missing', piece.state === 'missing' ? 'fail' : 'warn', `${piece.name}: ${piece.state}${piece.detail ? ` (${piece.detail})` : ''}`, 'our table is not as planned for these options', commands.apply));
      continue;
    }
    const planned = plannedRules(plan).find(({ chain, rule }) => piece.name === `${chain.name}: ${rule.comment}`);
    if (!planned) continue;
    const { id, severity, why } = ruleId(input, planned.chain, planned.rule, local);
    if (piece.state === 'missing') out.push(finding('rules', id, severity, `${table} ${piece.name}: missing`, why, restoreRuleCommand(input, planned.chain, planned.rule)));
    else out.push(finding('rules', id === 'rules.missing' ? 'rules.drift' : id, 'warn', `${table} ${piece.name}: ${piece.detail ?? 'drifted'}`, 'the rule differs from the plan for these options (different options, or edited by hand)', commands.apply));
  }
  if (status.unexpected.length > 0) out.push(finding('rules', 'rules.unexpected', 'warn', `in ${table} but not planned: ${status.unexpected.join('; ')}`, 'our table was edited, or applied with other options than doctor was given', commands.apply));
  if (!out.some((f) => f.id === 'rules.divert')) out.push(finding('rules', 'rules.divert', 'pass', 'divert rules in place', 'packets of flows the proxy owns reach its sockets'));
  return out;
}

const DELETE = /^table (\S+) (\S+) chain (\S+) handle (\d+)/;

function markCollisions(input: DoctorInput): Finding[] {
  const { fwmark, fwmarkMask, tableName } = input.config;
  const ours = { value: fwmark, mask: fwmarkMask };
  const out: Finding[] = [];
  // Rules of others that intercept set the fwmark on purpose: those are the TPROXY rules in force.
  const intercepting = new Set(input.rulesBy === 'others' ? input.foreign.filter((r) => r.table.origin === 'nft' && r.rule.handle !== undefined).map((r) => `table ${r.table.family} ${r.table.name} chain ${r.chain.name} handle ${r.rule.handle ?? ''}`) : []);
  for (const usage of markUsageFromNft(input.nft, { family: 'inet', name: tableName })) {
    const del = DELETE.exec(usage.where);
    if (del && intercepting.has(del[0])) continue;
    const fix = del ? `nft delete rule ${del[1]!} ${del[2]!} ${del[3]!} handle ${del[4]!}` : undefined;
    if (usage.kind === 'set' && sharedBits(usage.mark.mask, fwmarkMask) !== 0) {
      out.push(finding('rules', 'rules.mark-collision', 'fail', `${usage.where} sets mark bits ${shortMark({ value: usage.mark.mask, mask: usage.mark.mask })}, which include fwmark ${shortMark(ours)}`, 'it overwrites the mark of intercepted packets (or marks other traffic as ours): marked packets lose their local route, or foreign packets are routed to the proxy. Remove the rule or give tproxy other bits (--fwmark, --fwmark-mask)', fix));
    } else if (usage.kind === 'match' && marksCollide(usage.mark, ours)) {
      out.push(finding('rules', 'rules.mark-collision', 'warn', `${usage.where} matches mark ${shortMark(usage.mark)}, which intercepted packets carry`, 'its action also applies to intercepted packets', fix));
    }
  }
  if (out.length === 0) out.push(finding('rules', 'rules.mark-collision', 'pass', `no other rule uses fwmark ${shortMark(ours)}`, 'nothing else reads or writes our mark bits'));
  return out;
}

/** A divert rule that matches `socket transparent` but looks at no TCP flags and is not UDP-only: it catches SYNs. */
function catchesSyns(rule: Rule): boolean {
  const matches = rule.expressions.filter((e): e is Match => e.kind === 'match');
  if (!matches.some((m) => m.left.kind === 'socket' && m.left.key === 'transparent')) return false;
  if (matches.some((m) => m.left.kind === 'payload' && m.left.field === 'flags')) return false;
  return !matches.some((m) => m.left.kind === 'meta' && m.left.key === 'l4proto' && m.right.kind === 'symbol' && m.right.value === 'udp');
}

/** Built-in mangle chains a divert cannot be in: it must act before routing (PREROUTING, or a chain of its own jumped to). */
const NOT_BEFORE_ROUTING = new Set(['INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/**
 * The iptables form of catchesSyns, read from the rule's words (quoted comments are one word, so a
 * comment naming `-m socket` is not a match): the socket match, no look at the TCP flags
 * (`--tcp-flags`, `--syn`, negated or not), and not UDP only (`-p udp`; `! -p udp` still takes TCP).
 */
function specCatchesSyns(rule: IptablesRule): boolean {
  if (rule.table !== 'mangle' || NOT_BEFORE_ROUTING.has(rule.chain)) return false;
  const words = specTokens(rule.spec);
  const option = (names: readonly string[], value: (v: string | undefined) => boolean, negated: boolean): boolean =>
    words.some((w, i) => names.includes(w) && value(words[i + 1]) && (words[i - 1] === '!') === negated);
  if (!option(['-m', '--match'], (v) => v === 'socket', false)) return false;
  if (words.includes('--tcp-flags') || words.includes('--syn')) return false;
  return !option(['-p', '--protocol'], (v) => v === 'udp' || v === '17', false);
}

function divertSyn(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  for (const table of input.world.ruleset.tables) {
    if (table.origin !== 'nft') continue;
    for (const chain of table.chains) {
      if (chain.base?.hook !== 'prerouting') continue;
      for (const rule of chain.rules) {
        if (!catchesSyns(rule)) continue;
        out.push(finding('rules', 'rules.divert-syn', 'warn', `table ${table.family} ${table.name} chain ${chain.name} handle ${rule.handle ?? '?'} matches socket transparent without excluding TCP SYNs`, 'a new SYN that reuses the addresses of a transparent TIME_WAIT socket is diverted to it and answered with an ACK instead of reaching the listener: connects stall for a second. Add `tcp flags & (syn | ack) != syn`'));
      }
    }
  }
  const { iptables, iptablesLegacy } = input.snapshot;
  const dumps = [
    ['iptables', iptables.ipv4],
    ['ip6tables', iptables.ipv6],
    ['iptables-legacy', iptablesLegacy?.ipv4],
    ['ip6tables-legacy', iptablesLegacy?.ipv6],
  ] as const;
  for (const [command, text] of dumps) {
    for (const rule of parseIptablesDump(text ?? '').rules) {
      if (!specCatchesSyns(rule)) continue;
      out.push(finding('rules', 'rules.divert-syn', 'warn', `${command} -t mangle: -A ${rule.chain} ${rule.spec}`, 'the socket match also catches SYNs that reuse a transparent TIME_WAIT socket\'s addresses: connects stall for a second. Add `-m tcp ! --tcp-flags SYN,ACK SYN` (or `! --syn`) to the rule'));
    }
  }
  return out;
}

/** With --local: a packet the proxy sends upstream (carrying its SO_MARK) must leave, not loop back. */
function upstreamLoop(input: DoctorInput, already: boolean): Finding[] {
  const c = input.config;
  const hasOutput = input.nft.chains.some((ch) => ch.family === 'inet' && ch.table === c.tableName && ch.hook === 'output');
  if (!c.localTraffic && !hasOutput) return [];
  const out: Finding[] = [];
  for (const listener of c.listeners) {
    const spec = listener.intercept[0];
    const mark = `0x${listener.upstreamMark.toString(16)}`;
    const whose = c.listeners.length > 1 ? ` of listener ${listener.name}` : '';
    for (const site of probeSites(input.world, c)) {
      const local = input.world.interfaces.flatMap((i) => i.addresses).find((a) => a.ip.family === site.family && !a.secondary && !(site.family === 6 && a.ip.value >> 118n === 0x3fan) && a.ip.value !== 1n && !(site.family === 4 && a.ip.value >> 24n === 127n));
      if (!spec || !local) continue;
      const packet: Packet = { family: site.family, l4proto: spec.transport, saddr: local.ip, daddr: site.daddr, sport: 45000, dport: spec.ports[0]?.from ?? 80, tcpFlags: spec.transport === 'tcp' ? TCP_FLAGS.syn! : 0, mark: listener.upstreamMark, dscp: 0, ecn: 0, ttl: 64, ctState: 'new' };
      const e = explainPacket(input.world, packet, { origin: 'local' });
      const looped = e.outcome.kind === 'delivered' && c.listeners.some((l) => e.socket?.local.port === l.port);
      if (looped && !already) {
        out.push(finding('rules', 'rules.upstream-loop', 'fail', `a packet the proxy sends upstream${whose} (mark ${mark}) to port ${packet.dport} is delivered back to the proxy`, 'the proxy would connect to itself over and over', input.commands.apply, formatTrace(e)));
      } else if (!looped && !already) {
        out.push(finding('rules', 'rules.upstream-loop', 'pass', `the proxy's upstream packets${whose} (mark ${mark}) leave this host (${e.outcome.kind})`, 'no loop through the proxy'));
      }
      break;
    }
  }
  return out;
}

export function checkRules(input: DoctorInput): Finding[] {
  const out = ourRules(input);
  if (input.config.failMode === 'open') {
    out.push(finding('rules', 'rules.fail-open', 'warn', 'fail mode open: no rule stops intercepted traffic while no proxy socket exists', 'when the proxy is down, crashed or not yet started, nft tproxy does not match and intercepted traffic goes to its destination uninspected'));
  }
  out.push(...markCollisions(input), ...divertSyn(input));
  out.push(...upstreamLoop(input, out.some((f) => f.id === 'rules.upstream-loop')));
  return out;
}

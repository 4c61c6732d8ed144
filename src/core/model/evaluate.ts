/**
 * Netfilter hook evaluation as nf_hook_slow and nft_do_chain do it:
 *
 *   packet -> base chain (lowest priority first) -> ... -> base chain (highest) -> next stage
 *
 * Within a chain, rules run in order; `accept` ends that base chain only (the next base chain on
 * the hook still sees the packet), `drop`/`reject` end everything; `jump` pushes a return point,
 * `goto` does not; `return` (or the end of a regular chain) pops; the end of a base chain applies
 * its policy. Jumps deeper than the kernel's stack (16) stop the evaluation.
 */
import { TproxyError } from '../errors.js';
import { formatIp, type IpAddress } from '../net/address.js';
import { evaluateMatch, type MatchContext } from './match.js';
import { hex, type Packet } from './packet.js';
import { renderExpression, renderRule } from './render.js';
import { chainId, tableSeesFamily, type Chain, type Expression, type Hook, type Ruleset, type Table } from './ruleset.js';
import { describeSocket, lookupSocket, tproxyLookup, type SocketEntry } from './sockets.js';
import type { RuleRef, TraceStep } from './trace.js';

export const JUMP_STACK_SIZE = 16;
const MAX_RULE_VISITS = 10_000;

export interface HookEnvironment {
  readonly ruleset: Ruleset;
  readonly sockets: readonly SocketEntry[];
  readonly fibAddressType: (packet: Packet, flags: readonly string[]) => string;
  /** nf_tproxy_laddr: the primary address of the input interface, else the packet's destination. */
  readonly tproxyLocalAddress: (packet: Packet) => IpAddress;
  readonly oif?: string;
}

export interface Drop {
  readonly by: string;
  readonly chain?: string;
  readonly handle?: number;
  readonly rule?: string;
  /** reject: the answer the kernel sends (`tcp reset`, `icmpx admin-prohibited`). */
  readonly reject?: string;
}

export interface HookResult {
  readonly packet: Packet;
  readonly verdict: 'accept' | 'drop';
  readonly drop?: Drop;
  /** The socket a tproxy statement assigned (skb->sk). */
  readonly assigned?: SocketEntry;
  /** Rules whose counter statement ran. */
  readonly counted: readonly RuleRef[];
  /** Something the model could not evaluate was on the path. */
  readonly uncertain: boolean;
  /** A `type route` chain changed the mark, addresses or DSCP: output routing runs again. */
  readonly reroute: boolean;
  readonly steps: readonly TraceStep[];
}

function routeKeysChanged(a: Packet, b: Packet): boolean {
  return a.mark !== b.mark || a.daddr.value !== b.daddr.value || a.saddr.value !== b.saddr.value || a.dscp !== b.dscp;
}

interface Frame {
  readonly chain: Chain;
  index: number;
}

export function baseChainsFor(ruleset: Ruleset, hook: Hook, family: 4 | 6): { table: Table; chain: Chain }[] {
  const found: { table: Table; chain: Chain; order: number }[] = [];
  let order = 0;
  for (const table of ruleset.tables) {
    if (!tableSeesFamily(table, family)) continue;
    for (const chain of table.chains) {
      if (chain.base?.hook === hook && (chain.base.type === 'filter' || chain.base.type === 'route')) found.push({ table, chain, order: order++ });
    }
  }
  return found.sort((a, b) => a.chain.base!.priority - b.chain.base!.priority || a.order - b.order);
}

function tosOf(p: Packet): number {
  return ((p.dscp << 2) | p.ecn) & 0xff;
}

export function evaluateHook(hook: Hook, packetIn: Packet, env: HookEnvironment, assignedIn?: SocketEntry): HookResult {
  let packet = packetIn;
  let assigned = assignedIn;
  const steps: TraceStep[] = [];
  const counted: RuleRef[] = [];
  let uncertain = false;
  let reroute = false;
  const chains = baseChainsFor(env.ruleset, hook, packet.family);
  const skipped = env.ruleset.tables.flatMap((t) => (tableSeesFamily(t, packet.family) ? t.chains.filter((c) => c.base?.hook === hook && c.base.type === 'nat').map((c) => chainId(t, c)) : []));
  if (skipped.length) steps.push({ stage: 'note', hook, text: `nat chains not modelled: ${skipped.join(', ')}` });
  for (const { table, chain } of chains) {
    const base = chain.base!;
    const entering = packet;
    steps.push({ stage: 'hook', hook, chain: chainId(table, chain), text: `${hook}: chain ${chainId(table, chain)} (type ${base.type}, priority ${base.priority}, policy ${base.policy})` });
    const ctx: MatchContext = {
      sets: table.sets,
      socketFor: (p) => assigned ?? lookupSocket(env.sockets, p),
      fibAddressType: env.fibAddressType,
      ...(env.oif !== undefined ? { oif: env.oif } : {}),
    };
    const stack: Frame[] = [];
    let frame: Frame = { chain, index: 0 };
    let chainVerdict: 'accept' | 'drop' | undefined;
    let drop: Drop | undefined;
    for (let visits = 0; chainVerdict === undefined; visits++) {
      if (visits > MAX_RULE_VISITS) throw new TproxyError('ERR_INVALID_ARGUMENT', `ruleset evaluation did not end after ${MAX_RULE_VISITS} rules`, { chain: chainId(table, chain) });
      const rule = frame.chain.rules[frame.index];
      if (!rule) {
        const popped = stack.pop();
        if (popped) {
          steps.push({ stage: 'rule', hook, chain: chainId(table, frame.chain), text: `end of chain ${frame.chain.name}: back to ${popped.chain.name}` });
          frame = popped;
          continue;
        }
        chainVerdict = base.policy;
        steps.push({ stage: 'policy', hook, chain: chainId(table, chain), verdict: base.policy, text: `end of ${chainId(table, chain)}: policy ${base.policy}` });
        if (base.policy === 'drop') drop = { by: `policy drop of ${chainId(table, chain)}`, chain: chainId(table, chain) };
        continue;
      }
      const ref: RuleRef = { chain: chainId(table, frame.chain), index: frame.index, ...(rule.handle !== undefined ? { handle: rule.handle } : {}) };
      // The rule's comment names it for people ("tproxy: fail closed tcp ipv4"); the handle for nft.
      const id = `${ref.chain}${rule.handle !== undefined ? ` handle ${rule.handle}` : ` rule ${frame.index + 1}`}${rule.comment ? ` "${rule.comment}"` : ''}`;
      const text = renderRule(rule);
      frame.index++;
      const effects: string[] = [];
      let failed: string | undefined;
      let verdict: Expression | undefined;
      for (const e of rule.expressions) {
        if (e.kind === 'match') {
          const r = evaluateMatch(e, packet, ctx);
          if (!r.matched) {
            failed = r.reason;
            break;
          }
        } else if (e.kind === 'xt-socket') {
          const sk = assigned ?? lookupSocket(env.sockets, packet);
          const wildcard = sk !== undefined && !e.nowildcard && sk.state !== 'time-wait' && sk.local.addr.value === 0n;
          const found = sk !== undefined && !wildcard && (!e.transparent || sk.transparent);
          if (found === e.negate) {
            failed = `-m socket: ${sk ? `${describeSocket(sk)}${wildcard ? ' is bound to a wildcard address' : ' is not transparent'}` : 'no socket'}`;
            break;
          }
        } else if (e.kind === 'mark') {
          packet = { ...packet, mark: ((packet.mark & e.and) ^ e.xor) >>> 0 };
          effects.push(`mark ${hex(packet.mark)}`);
        } else if ((e.kind === 'tos' || e.kind === 'ttl') && e.family !== undefined && e.family !== packet.family) {
          failed = `${renderExpression(e)}: not an IPv${e.family} packet (nft adds a hidden family match)`;
          break;
        } else if (e.kind === 'tos') {
          const tos = ((tosOf(packet) & e.and) ^ e.xor) & 0xff;
          packet = { ...packet, dscp: tos >> 2, ecn: tos & 3 };
          effects.push(`dscp ${packet.dscp}`);
        } else if (e.kind === 'ttl') {
          const ttl = e.op === 'set' ? e.value : e.op === 'inc' ? Math.min(255, packet.ttl + e.value) : Math.max(0, packet.ttl - e.value);
          packet = { ...packet, ttl };
          effects.push(`ttl ${ttl}`);
        } else if (e.kind === 'tproxy') {
          if (e.family !== undefined && e.family !== packet.family) {
            failed = `tproxy ${e.family === 4 ? 'ip' : 'ip6'}: not an IPv${e.family} packet`;
            break;
          }
          const taddr = e.addr ?? env.tproxyLocalAddress(packet);
          const tport = e.port ?? packet.dport;
          const lookup = tproxyLookup(env.sockets, packet, taddr, tport);
          for (const line of lookup.considered) steps.push({ stage: 'socket', hook, chain: ref.chain, text: `tproxy lookup: ${line}` });
          const sk = lookup.socket;
          const ok = sk !== undefined && sk.transparent;
          const why = sk ? `${describeSocket(sk)} is not transparent (no IP_TRANSPARENT)` : `no socket for ${formatIp(taddr)}:${tport}`;
          if (e.flavour === 'xt') {
            if (!ok) {
              verdict = { kind: 'verdict', verdict: 'drop', detail: `TPROXY: ${why}` };
              break;
            }
            assigned = sk;
            if (e.onMatchMark) packet = { ...packet, mark: ((packet.mark & ~e.onMatchMark.mask) ^ e.onMatchMark.value) >>> 0 };
            effects.push(`socket ${describeSocket(sk)}`, `mark ${hex(packet.mark)}`);
            verdict = { kind: 'verdict', verdict: 'accept' };
            break;
          }
          if (!ok) {
            failed = `tproxy: ${why}, the rule stops here`;
            break;
          }
          assigned = sk;
          effects.push(`socket ${describeSocket(sk)}`);
        } else if (e.kind === 'counter') {
          counted.push(ref);
        } else if (e.kind === 'log') {
          effects.push(`log${e.prefix ? ` "${e.prefix}"` : ''}`);
        } else if (e.kind === 'unsupported') {
          uncertain = true;
          if (e.isMatch) {
            failed = `not modelled, assumed not to match: ${e.text}`;
            break;
          }
          effects.push(`ignored (not modelled): ${e.text}`);
        } else if (e.kind === 'verdict') {
          if (e.verdict === 'continue') continue;
          verdict = e;
          break;
        }
      }
      if (failed !== undefined) {
        steps.push({ stage: 'rule', hook, chain: ref.chain, ...(rule.handle !== undefined ? { handle: rule.handle } : {}), rule: text, matched: false, text: `${id}: no match (${failed})` });
        continue;
      }
      const v = verdict?.kind === 'verdict' ? verdict : undefined;
      const vtext = v ? renderExpression(v) : 'continue';
      steps.push({
        stage: 'rule',
        hook,
        chain: ref.chain,
        ...(rule.handle !== undefined ? { handle: rule.handle } : {}),
        rule: text,
        matched: true,
        verdict: vtext,
        text: `${id}: match${effects.length ? `, ${effects.join(', ')}` : ''} -> ${vtext}`,
      });
      if (!v) continue;
      switch (v.verdict) {
        case 'accept':
        case 'queue':
          chainVerdict = 'accept';
          if (v.verdict === 'queue') {
            uncertain = true;
            steps.push({ stage: 'note', text: 'queue to userspace is not modelled: assumed accepted' });
          }
          break;
        case 'drop':
        case 'reject':
          chainVerdict = 'drop';
          drop = { by: `${v.verdict} in ${id}${v.verdict === 'drop' && v.detail ? ` (${v.detail})` : ''}`, chain: ref.chain, ...(rule.handle !== undefined ? { handle: rule.handle } : {}), rule: text, ...(v.verdict === 'reject' ? { reject: v.detail ?? 'icmp port-unreachable' } : {}) };
          break;
        case 'return': {
          const popped = stack.pop();
          if (popped) frame = popped;
          else {
            chainVerdict = base.policy;
            steps.push({ stage: 'policy', hook, chain: chainId(table, chain), verdict: base.policy, text: `return from base chain ${chainId(table, chain)}: policy ${base.policy}` });
            if (base.policy === 'drop') drop = { by: `policy drop of ${chainId(table, chain)}`, chain: chainId(table, chain) };
          }
          break;
        }
        case 'jump':
        case 'goto': {
          const target = table.chains.find((c) => c.name === v.target);
          if (!target) throw new TproxyError('ERR_INVALID_ARGUMENT', `${id} jumps to chain "${v.target ?? ''}", which does not exist in table ${table.family} ${table.name}`);
          if (v.verdict === 'jump') {
            if (stack.length >= JUMP_STACK_SIZE) {
              chainVerdict = 'drop';
              drop = { by: `jump depth over ${JUMP_STACK_SIZE} at ${id}`, chain: ref.chain };
              break;
            }
            stack.push(frame);
          }
          frame = { chain: target, index: 0 };
          break;
        }
        default:
          break;
      }
    }
    if (chainVerdict === 'drop') return { packet, verdict: 'drop', ...(drop ? { drop } : {}), ...(assigned ? { assigned } : {}), counted, uncertain, reroute, steps };
    if (base.type === 'route' && routeKeysChanged(entering, packet)) reroute = true;
  }
  return { packet, verdict: 'accept', ...(assigned ? { assigned } : {}), counted, uncertain, reroute, steps };
}

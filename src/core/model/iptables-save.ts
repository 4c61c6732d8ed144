/**
 * The mangle table from `iptables-save -c -t mangle` (or ip6tables-save) as a ruleset table:
 * base chains PREROUTING, INPUT, FORWARD, OUTPUT (type route: a changed mark reroutes) and
 * POSTROUTING at priority -150; matches -p, -s, -d, -i, -o, tcp/udp/multiport ports, --tcp-flags,
 * -m mark, -m socket, -m conntrack/state, -m dscp, -m addrtype; targets ACCEPT, DROP, RETURN,
 * user chains (-j / -g), MARK, TOS, DSCP, TTL / HL, TPROXY, LOG. Others stay `unsupported`.
 * The lines come from the one iptables-save reader (core/iptables-dump.ts); this gives them meaning.
 */
import type { Family } from '../net/constants.js';
import { TproxyError } from '../errors.js';
import { parseIptablesDump, specTokens } from '../iptables-dump.js';
import { parseIp } from '../net/address.js';
import { parseKernelPrefix } from '../net/prefix.js';
import { TCP_FLAGS } from './packet.js';
import { dscpStatement, type Chain, type Expression, type Hook, type Match, type MatchOp, type Rule, type Selector, type Table, type Value } from './ruleset.js';

const BASE_HOOKS: Readonly<Record<string, Hook>> = { PREROUTING: 'prerouting', INPUT: 'input', FORWARD: 'forward', OUTPUT: 'output', POSTROUTING: 'postrouting' };
export const MANGLE_PRIORITY = -150;


function num(text: string): number {
  return Number(text) >>> 0;
}

function valueMask(text: string): { value: number; mask: number } {
  const [v = '0', m] = text.split('/');
  return { value: num(v), mask: m === undefined ? 0xffffffff : num(m) };
}

function portValue(text: string): Value {
  const [from, to] = text.split(':');
  return to === undefined ? { kind: 'number', value: Number(from) } : { kind: 'range', from: { kind: 'number', value: Number(from || 0) }, to: { kind: 'number', value: Number(to || 65535) } };
}

function match(left: Selector, negate: boolean, right: Value, mask?: Value): Match {
  const op: MatchOp = negate ? '!=' : '==';
  return mask ? { kind: 'match', left, mask, op, right } : { kind: 'match', left, op, right };
}

function flagNames(text: string): string[] {
  if (text === 'ALL') return Object.keys(TCP_FLAGS);
  if (text === 'NONE') return [];
  return text.toLowerCase().split(',');
}

function parseRule(tokens: string[], family: Family, context: string): { chain: string; rule: Rule } {
  const expressions: Expression[] = [];
  let chain = '';
  let proto = '';
  let negate = false;
  let comment: string | undefined;
  let counter: { packets: number; bytes: number } | undefined;
  const fam = family === 4 ? 'ip' : 'ip6';
  const next = (i: number): string => {
    const t = tokens[i];
    if (t === undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', `iptables-save: ${tokens[i - 1] ?? ''} needs a value in "${context}"`);
    return t;
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const neg = negate;
    negate = false;
    const c = /^\[(\d+):(\d+)\]$/.exec(t);
    if (c) {
      counter = { packets: Number(c[1]), bytes: Number(c[2]) };
      continue;
    }
    switch (t) {
      case '!':
        negate = true;
        break;
      case '-A':
        chain = next(++i);
        break;
      case '-p':
        proto = next(++i);
        expressions.push(match({ kind: 'meta', key: 'l4proto' }, neg, { kind: 'symbol', value: proto }));
        break;
      case '-s':
      case '-d':
        expressions.push(match({ kind: 'payload', protocol: fam, field: t === '-s' ? 'saddr' : 'daddr' }, neg, { kind: 'prefix', prefix: parseKernelPrefix(next(++i)) }));
        break;
      case '-i':
      case '-o':
        expressions.push(match({ kind: 'meta', key: t === '-i' ? 'iifname' : 'oifname' }, neg, { kind: 'symbol', value: next(++i).replace(/\+$/, '*') }));
        break;
      case '-m':
        i++; // the match module name; its options follow
        break;
      case '--dport':
      case '--sport':
      case '--destination-port':
      case '--source-port':
        expressions.push(match({ kind: 'payload', protocol: proto === 'udp' ? 'udp' : proto === 'tcp' ? 'tcp' : 'th', field: t.startsWith('--d') ? 'dport' : 'sport' }, neg, portValue(next(++i))));
        break;
      case '--dports':
      case '--sports':
        expressions.push(match({ kind: 'payload', protocol: 'th', field: t === '--dports' ? 'dport' : 'sport' }, neg, { kind: 'set', elements: next(++i).split(',').map(portValue) }));
        break;
      case '--tcp-flags': {
        const mask = flagNames(next(++i));
        const set = flagNames(next(++i));
        expressions.push(match({ kind: 'payload', protocol: 'tcp', field: 'flags' }, neg, { kind: 'flags', values: set.length ? set : ['0'] }, { kind: 'flags', values: mask }));
        break;
      }
      case '--syn':
        expressions.push(match({ kind: 'payload', protocol: 'tcp', field: 'flags' }, neg, { kind: 'flags', values: ['syn'] }, { kind: 'flags', values: ['fin', 'syn', 'rst', 'ack'] }));
        break;
      case '--mark': {
        const { value, mask } = valueMask(next(++i));
        expressions.push(match({ kind: 'meta', key: 'mark' }, neg, { kind: 'number', value }, mask === 0xffffffff ? undefined : { kind: 'number', value: mask }));
        break;
      }
      case '--ctstate':
      case '--state':
        expressions.push({ kind: 'match', left: { kind: 'ct', key: 'state' }, op: neg ? '!=' : 'in', right: { kind: 'set', elements: next(++i).toLowerCase().split(',').map((s) => ({ kind: 'symbol', value: s })) } });
        break;
      case '--dscp':
        expressions.push(match({ kind: 'payload', protocol: fam, field: 'dscp' }, neg, { kind: 'number', value: num(next(++i)) }));
        break;
      case '--dst-type':
        expressions.push(match({ kind: 'fib', result: 'type', flags: ['daddr'] }, neg, { kind: 'symbol', value: next(++i).toLowerCase() }));
        break;
      case '--transparent':
      case '--nowildcard':
      case '--restore-skmark':
        break; // read with -m socket below
      case '--comment':
        comment = next(++i);
        break;
      case '-j':
      case '-g': {
        const target = next(++i);
        const opts: Record<string, string> = {};
        while (tokens[i + 1]?.startsWith('--')) {
          const key = tokens[++i]!;
          const value = tokens[i + 1] !== undefined && !tokens[i + 1]!.startsWith('--') ? tokens[++i]! : '';
          opts[key] = value;
        }
        expressions.push(...target_(t === '-g' ? 'goto' : 'jump', target, opts, family));
        break;
      }
      default:
        if (t.startsWith('--')) expressions.push({ kind: 'unsupported', text: `${t} ${tokens[i + 1] ?? ''}`.trim(), isMatch: true });
        break;
    }
  }
  // -m socket: its position among the matches does not change the outcome of a conjunction.
  const socketAt = tokens.findIndex((tok, idx) => tok === 'socket' && tokens[idx - 1] === '-m');
  if (socketAt >= 0) {
    const negated = tokens[socketAt - 2] === '!';
    expressions.unshift({ kind: 'xt-socket', transparent: tokens.includes('--transparent'), nowildcard: tokens.includes('--nowildcard'), negate: negated });
  }
  if (counter) {
    // iptables counts a rule when its matches hold, before the target runs.
    const at = expressions.findIndex((e) => e.kind !== 'match' && e.kind !== 'xt-socket' && !(e.kind === 'unsupported' && e.isMatch));
    expressions.splice(at < 0 ? expressions.length : at, 0, { kind: 'counter', ...counter });
  }
  return { chain, rule: { ...(comment !== undefined ? { comment } : {}), expressions } };
}

function target_(how: 'jump' | 'goto', target: string, o: Record<string, string>, family: Family): Expression[] {
  switch (target) {
    case 'ACCEPT':
      return [{ kind: 'verdict', verdict: 'accept' }];
    case 'DROP':
      return [{ kind: 'verdict', verdict: 'drop' }];
    case 'RETURN':
      return [{ kind: 'verdict', verdict: 'return' }];
    case 'REJECT':
      return [{ kind: 'verdict', verdict: 'reject', detail: o['--reject-with'] ?? 'icmp-port-unreachable' }];
    case 'MARK': {
      const spec = o['--set-xmark'] ?? o['--set-mark'];
      if (spec !== undefined) {
        const { value, mask } = valueMask(spec);
        return [o['--set-xmark'] !== undefined ? { kind: 'mark', and: ~mask >>> 0, xor: value } : { kind: 'mark', and: ~mask >>> 0, xor: value & mask }];
      }
      if (o['--or-mark'] !== undefined) return [{ kind: 'mark', and: ~num(o['--or-mark']) >>> 0, xor: num(o['--or-mark']) }];
      if (o['--and-mark'] !== undefined) return [{ kind: 'mark', and: num(o['--and-mark']), xor: 0 }];
      if (o['--xor-mark'] !== undefined) return [{ kind: 'mark', and: 0xffffffff, xor: num(o['--xor-mark']) }];
      break;
    }
    case 'TOS': {
      const spec = o['--set-tos'];
      if (spec !== undefined) {
        const { value, mask } = valueMask(spec);
        const m = mask === 0xffffffff ? 0xff : mask & 0xff;
        return [{ kind: 'tos', and: ~m & 0xff, xor: value & 0xff, text: `TOS --set-tos ${spec}` }];
      }
      break;
    }
    case 'DSCP':
      if (o['--set-dscp'] !== undefined) return [dscpStatement(num(o['--set-dscp']), `DSCP --set-dscp ${o['--set-dscp']}`)];
      break;
    case 'TTL':
    case 'HL': {
      const p = target === 'TTL' ? '--ttl' : '--hl';
      for (const op of ['set', 'inc', 'dec'] as const) if (o[`${p}-${op}`] !== undefined) return [{ kind: 'ttl', op, value: Number(o[`${p}-${op}`]) }];
      break;
    }
    case 'TPROXY': {
      const on = o['--on-ip'];
      const addr = on !== undefined ? parseIp(on) : undefined;
      const mark = o['--tproxy-mark'] !== undefined ? valueMask(o['--tproxy-mark']) : undefined;
      return [
        {
          kind: 'tproxy',
          flavour: 'xt',
          family,
          ...(addr && addr.value !== 0n ? { addr } : {}),
          ...(o['--on-port'] !== undefined && Number(o['--on-port']) !== 0 ? { port: Number(o['--on-port']) } : {}),
          ...(mark ? { onMatchMark: mark } : {}),
        },
      ];
    }
    case 'LOG':
      return [{ kind: 'log', ...(o['--log-prefix'] !== undefined ? { prefix: o['--log-prefix'] } : {}) }];
    default:
      if (Object.keys(o).length === 0) return [{ kind: 'verdict', verdict: how, target }];
      break;
  }
  return [{ kind: 'unsupported', text: `-j ${target} ${Object.entries(o).map(([k, v]) => `${k} ${v}`.trim()).join(' ')}`.trim(), isMatch: false }];
}

/** The mangle table of `iptables-save` / `ip6tables-save` output, or undefined when it has none. */
export function parseIptablesSave(text: string, family: Family, origin: 'iptables' | 'iptables-legacy' = 'iptables'): Table | undefined {
  const dump = parseIptablesDump(text);
  const declared = dump.chains.get('mangle');
  if (!declared) return undefined;
  const chains = new Map<string, { name: string; base?: Chain['base']; rules: Rule[] }>();
  for (const { name, policy } of declared) {
    const hook = BASE_HOOKS[name];
    chains.set(name, {
      name,
      ...(hook ? { base: { type: hook === 'output' ? 'route' : 'filter', hook, priority: MANGLE_PRIORITY, policy: policy === 'DROP' ? ('drop' as const) : ('accept' as const) } } : {}),
      rules: [],
    });
  }
  // Rules in the order listed; a line that is no rule still goes through the rule reader, which
  // refuses what it cannot read and skips what names no chain.
  const lines = [...dump.rules.filter((r) => r.table === 'mangle').map((r) => r.line), ...dump.unread.filter((u) => u.table === 'mangle').map((u) => u.line)];
  for (const line of lines) {
    const { chain, rule } = parseRule(specTokens(line), family, line);
    if (!chain) continue;
    let c = chains.get(chain);
    if (!c) chains.set(chain, (c = { name: chain, rules: [] }));
    c.rules.push(rule);
  }
  return { family: family === 4 ? 'ip' : 'ip6', name: 'mangle', origin, sets: [], chains: [...chains.values()] };
}

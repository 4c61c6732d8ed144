/**
 * The ruleset in netfilter vocabulary: tables hold base chains (attached to a hook with a type,
 * priority and policy), regular chains (reached by jump/goto) and named sets. A rule is a list of
 * expressions evaluated left to right: matches stop the rule when false, statements act, verdicts
 * end it. Both nft JSON and iptables-save text are read into this one form.
 */
import type { Family } from '../net/constants.js';
import type { IpAddress } from '../net/address.js';
import type { Prefix } from '../net/prefix.js';
import type { TableFamily } from '../nft-listing.js';

export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress' | 'egress';

/** Where a selector reads from, e.g. `meta mark`, `ip saddr`, `th dport`, `socket transparent`. */
export type Selector =
  | { readonly kind: 'meta'; readonly key: string }
  | { readonly kind: 'payload'; readonly protocol: string; readonly field: string }
  | { readonly kind: 'socket'; readonly key: string }
  | { readonly kind: 'ct'; readonly key: string }
  | { readonly kind: 'fib'; readonly result: string; readonly flags: readonly string[] };

export type Value =
  | { readonly kind: 'number'; readonly value: number }
  /** A symbol: a protocol, flag, state, DSCP or address type name, or an interface name. */
  | { readonly kind: 'symbol'; readonly value: string }
  /** A list of flag or state names combined (`syn | ack`, `established,related`). */
  | { readonly kind: 'flags'; readonly values: readonly string[] }
  | { readonly kind: 'prefix'; readonly prefix: Prefix }
  | { readonly kind: 'range'; readonly from: Value; readonly to: Value }
  | { readonly kind: 'set'; readonly elements: readonly Value[] }
  | { readonly kind: 'setref'; readonly name: string };

export type MatchOp = '==' | '!=' | 'in' | '<' | '>' | '<=' | '>=';

export interface Match {
  readonly kind: 'match';
  readonly left: Selector;
  /** `left & mask` before comparing (`meta mark & 0xff00 == 0x100`, `tcp flags & (syn|ack)`). */
  readonly mask?: Value;
  readonly op: MatchOp;
  readonly right: Value;
}

/** iptables `-m socket [--transparent] [--nowildcard]` (xt_socket: wildcard-bound sockets are ignored). */
export interface XtSocketMatch {
  readonly kind: 'xt-socket';
  readonly transparent: boolean;
  readonly nowildcard: boolean;
  readonly negate: boolean;
}

/** new mark = (old & and) ^ xor, the kernel's bitwise form of every mark assignment. */
export interface MarkStatement {
  readonly kind: 'mark';
  readonly and: number;
  readonly xor: number;
}

/** new TOS / traffic class byte = (old & and) ^ xor (`ip dscp set`, iptables TOS and DSCP). */
export interface TosStatement {
  readonly kind: 'tos';
  readonly and: number;
  readonly xor: number;
  /** How it was written, for the trace (`ip dscp set cs1`, `TOS --set-tos 0x10/0x3f`). */
  readonly text: string;
  /** `ip ...` / `ip6 ...` in nft: the rule carries a hidden family dependency before it. */
  readonly family?: Family;
}

export interface TtlStatement {
  readonly kind: 'ttl';
  readonly op: 'set' | 'inc' | 'dec';
  readonly value: number;
  readonly family?: Family;
}

export interface TproxyStatement {
  readonly kind: 'tproxy';
  /** nft: no socket means the rule stops matching; xt (iptables TPROXY): the packet is dropped. */
  readonly flavour: 'nft' | 'xt';
  /** The `ip` / `ip6` form; undefined for the inet form (`tproxy to :8000`). */
  readonly family?: Family;
  readonly addr?: IpAddress;
  readonly port?: number;
  /** xt TPROXY sets the mark itself when it finds a socket: (mark & ~mask) ^ value. */
  readonly onMatchMark?: { readonly value: number; readonly mask: number };
}

export interface CounterStatement {
  readonly kind: 'counter';
  readonly packets?: number;
  readonly bytes?: number;
}

export interface LogStatement {
  readonly kind: 'log';
  readonly prefix?: string;
}

export type VerdictKind = 'accept' | 'drop' | 'reject' | 'return' | 'jump' | 'goto' | 'continue' | 'queue';

export interface VerdictStatement {
  readonly kind: 'verdict';
  readonly verdict: VerdictKind;
  readonly target?: string;
  /** reject: how (`tcp reset`, `icmpx admin-prohibited`). */
  readonly detail?: string;
}

/** Something the model does not know how to evaluate; kept with its text so the trace can say so. */
export interface UnsupportedExpression {
  readonly kind: 'unsupported';
  readonly text: string;
  /** When true it filters (a match); the model assumes it does not match. */
  readonly isMatch: boolean;
}

export type Expression =
  | Match
  | XtSocketMatch
  | MarkStatement
  | TosStatement
  | TtlStatement
  | TproxyStatement
  | CounterStatement
  | LogStatement
  | VerdictStatement
  | UnsupportedExpression;

export interface Rule {
  readonly handle?: number;
  readonly comment?: string;
  readonly expressions: readonly Expression[];
}

export interface BaseChainSpec {
  readonly type: string;
  readonly hook: Hook;
  readonly priority: number;
  readonly policy: 'accept' | 'drop';
}

export interface Chain {
  readonly name: string;
  readonly base?: BaseChainSpec;
  readonly rules: readonly Rule[];
}

export interface NamedSet {
  readonly name: string;
  readonly type: string;
  readonly elements: readonly Value[];
}

export interface Table {
  readonly family: TableFamily;
  readonly name: string;
  /** Where it was read from: nftables, iptables-save of the nft flavour, or the legacy x_tables. */
  readonly origin: 'nft' | 'iptables' | 'iptables-legacy';
  readonly chains: readonly Chain[];
  readonly sets: readonly NamedSet[];
}

export interface Ruleset {
  readonly tables: readonly Table[];
}

export function tableSeesFamily(table: Table, family: Family): boolean {
  return table.family === 'inet' || (table.family === 'ip' && family === 4) || (table.family === 'ip6' && family === 6);
}

/** `inet fw pre`; a legacy x_tables chain reads `ip mangle[legacy] PREROUTING` (the nft flavour's has the same names). */
export function chainId(table: Table, chain: Chain): string {
  return `${table.family} ${table.name}${table.origin === 'iptables-legacy' ? '[legacy]' : ''} ${chain.name}`;
}

/** The TOS byte statement for `ip dscp set N`: keep the ECN bits, replace the DSCP bits. */
export function dscpStatement(dscp: number, text: string, family?: Family): TosStatement {
  return { kind: 'tos', and: 0x03, xor: (dscp & 0x3f) << 2, text, ...(family ? { family } : {}) };
}

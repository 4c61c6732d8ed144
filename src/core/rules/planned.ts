/**
 * The planned kernel state in netfilter vocabulary, independent of the backend that writes it:
 * matches, statements and a verdict per rule (rendered to nft text, nft JSON, or iptables-restore
 * input), named prefix sets, base chains, and the policy routing. Pure data.
 */
import type { Family, Transport } from '../net/constants.js';
import type { Cidr } from './cidr.js';
import type { PortRange, RulesConfig } from './config.js';
import type { MarkBits } from './marks.js';
import type { RulesRecord } from './record.js';

export type FibAddressType = 'local' | 'broadcast' | 'multicast';

export type Match =
  /** `meta nfproto ipv4` */
  | { readonly type: 'nfproto'; readonly family: Family }
  /** `meta l4proto udp` (implied, and so left out, when a tcp/udp header field is matched) */
  | { readonly type: 'l4proto'; readonly transport: Transport }
  /** `iifname { "eth1", "lo" }` */
  | { readonly type: 'iifname'; readonly names: readonly string[] }
  /** `tcp dport { 80, 8000-8100 }` */
  | { readonly type: 'dport'; readonly transport: Transport; readonly ports: readonly PortRange[] }
  /** `meta mark & mask == value` (`meta mark value` under the full mask) */
  | { readonly type: 'mark'; readonly mark: MarkBits }
  /** `tcp flags & (syn | ack) != syn`: anything but a pure SYN */
  | { readonly type: 'tcp-not-syn' }
  /** `socket transparent 1 socket wildcard 0`: the packet belongs to a transparent socket not bound to a wildcard address */
  | { readonly type: 'socket-transparent' }
  /** `ip daddr @set` */
  | { readonly type: 'address-in-set'; readonly family: Family; readonly direction: 'saddr' | 'daddr'; readonly set: string }
  /** `fib daddr type { local, broadcast, multicast }` */
  | { readonly type: 'fib-daddr-type'; readonly types: readonly FibAddressType[] }
  /** `meta skuid { 0, 1000 }` / `meta skgid ...` (locally generated packets only) */
  | { readonly type: 'skuid' | 'skgid'; readonly ids: readonly number[] };

export type Statement =
  /** `tproxy ip to :port meta mark set ...`: hand the packet to the local transparent socket and mark it */
  | { readonly type: 'tproxy'; readonly family: Family; readonly address?: string; readonly port: number; readonly mark: MarkBits }
  /** `meta mark set ...` under a mask */
  | { readonly type: 'mark-set'; readonly mark: MarkBits }
  /** `ip dscp set N` / `ip6 dscp set N` */
  | { readonly type: 'dscp-set'; readonly family: Family; readonly value: number }
  /** `ip ttl set N` / `ip6 hoplimit set N` */
  | { readonly type: 'ttl-set'; readonly family: Family; readonly value: number }
  | { readonly type: 'counter' };

/** `continue`: no verdict, evaluation goes on with the next rule. `reject`: TCP reset or ICMP port unreachable. */
export type Verdict = 'accept' | 'return' | 'drop' | 'reject' | 'continue';

/** What a rule is for; lets status, the demo and tests find rules without parsing them. */
export type RuleRole = 'upstream-return' | 'divert' | 'bypass' | 'tproxy' | 'fail-closed' | 'local-exclude' | 'local-reroute';

export interface PlannedRule {
  readonly role: RuleRole;
  readonly family?: Family;
  readonly transport?: Transport;
  readonly matches: readonly Match[];
  readonly statements: readonly Statement[];
  readonly verdict: Verdict;
  /** Comment attached to the rule in the kernel; unique within its chain. */
  readonly comment: string;
}

export type ChainName = 'prerouting' | 'output';

export interface PlannedChain {
  readonly name: ChainName;
  readonly type: 'filter' | 'route';
  readonly hook: 'prerouting' | 'output';
  readonly priority: 'mangle';
  readonly policy: 'accept';
  readonly rules: readonly PlannedRule[];
}

/** A named set of prefixes (interval set), the ipset analogue. */
export interface PlannedSet {
  readonly name: string;
  readonly family: Family;
  readonly direction: 'saddr' | 'daddr';
  readonly elements: readonly Cidr[];
}

/**
 * What selects the packets a policy rule sends to our table: our fwmark (intercepted and diverted
 * packets), or this host's own packets from loopback (`from 127.0.0.0/8 iif lo`: the replies of an
 * mmproxy backend on loopback to a client's address).
 */
export type PolicySelector = { readonly fwmark: number; readonly fwmarkMask: number } | { readonly from: string; readonly iif: 'lo' };

export interface PolicyRoute {
  readonly family: Family;
  /** `ip rule add fwmark M/K lookup T priority P`, or `ip rule add from 127.0.0.0/8 iif lo lookup T priority P` */
  readonly rule: PolicySelector & { readonly table: number; readonly priority: number };
  /** `ip route add local <default> dev lo table T` */
  readonly route: { readonly type: 'local'; readonly destination: string; readonly device: 'lo'; readonly table: number };
}

export interface RulesPlan {
  readonly table: { readonly family: 'inet'; readonly name: string; readonly sets: readonly PlannedSet[]; readonly chains: readonly PlannedChain[] };
  readonly policyRoutes: readonly PolicyRoute[];
  /** What this plan owns on a host, written next to the rules so cleanup can find it later. */
  readonly record: RulesRecord;
  readonly config: RulesConfig;
}

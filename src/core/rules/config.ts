/**
 * What the kernel side should do: the configuration the planner turns into rules. Pure data.
 *
 * Defaults and why:
 * - failMode 'drop' (fail-closed): while no proxy socket exists (proxy crashed, hung, or not started
 *   yet) intercepted traffic is dropped instead of silently going around the proxy. nft `tproxy`
 *   without a socket falls through (the leak users report), xt TPROXY drops; dropping makes both
 *   backends behave the same, and a proxy the operator put in the path is never bypassed unnoticed.
 *   `tproxy run` removes its rules on a clean stop, so only a crash leaves traffic blocked, until
 *   the next start or `tproxy rules cleanup`. Choose 'open' where availability beats inspection.
 * - bypass: loopback, link-local, multicast and limited broadcast destinations, plus (always) the
 *   host's own, broadcast and multicast addresses through `fib daddr type`.
 */
import type { Family, Transport } from '../net/constants.js';

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

export interface InterceptSpec {
  readonly transport: Transport;
  readonly ports: readonly PortRange[];
}

/**
 * What happens to intercepted traffic while no transparent proxy socket takes it:
 * open (it goes its normal way), drop, or reject (TCP reset / ICMP port unreachable).
 */
export type FailMode = 'open' | 'drop' | 'reject';
export const FAIL_MODES: readonly FailMode[] = ['open', 'drop', 'reject'];

/** Named sets of CIDRs that are never intercepted (the ipset analogue), per direction. */
export interface BypassConfig {
  /** Destination prefixes, IPv4 and IPv6 mixed; split per family by the planner. */
  readonly destinations: readonly string[];
  readonly sources: readonly string[];
}

export const DEFAULT_BYPASS_DESTINATIONS: readonly string[] = [
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local
  '224.0.0.0/4', // multicast
  '255.255.255.255/32', // limited broadcast
  '::1/128', // loopback
  'fe80::/10', // link-local
  'ff00::/8', // multicast
];

/** Interception of the host's own traffic (opt-in): an output route chain marks it for rerouting. */
export interface LocalTrafficConfig {
  /** Processes running as these user ids are never intercepted. */
  readonly excludeUids: readonly number[];
  readonly excludeGids: readonly number[];
}

/** Opt-in mangle targets applied to every packet the rules hand to the proxy. */
export interface MangleConfig {
  /** Set these mark bits (value under mask); the mask must not overlap fwmarkMask. */
  readonly mark?: { readonly value: number; readonly mask: number };
  /** DSCP code point 0-63 (IPv4 `ip dscp`, IPv6 `ip6 dscp`). */
  readonly dscp?: number;
  /** IPv4 TTL and IPv6 hop limit, 1-255. */
  readonly ttl?: number;
}

/** One listener of the proxy and the traffic the tproxy rules send to it. */
export interface ListenerRules {
  /** Names the listener in rule comments when there are several. */
  readonly name: string;
  /** The local port the listener has (TCP and UDP): the tproxy rules redirect to it. */
  readonly port: number;
  /** The address the listener is bound to, per family (absent: any address of the host). */
  readonly addresses: { readonly 4?: string; readonly 6?: string };
  /** Families intercepted for this listener: a subset of the config's families. */
  readonly families: readonly Family[];
  readonly intercept: readonly InterceptSpec[];
  /** SO_MARK of this listener's upstream sockets; must differ from fwmark under fwmarkMask. */
  readonly upstreamMark: number;
}

/**
 * What the replies to the mmproxy listeners' backend connections need (issue 16). Those connections
 * leave this host from the client's address (a transparent socket), so the backend answers to an
 * address that is not ours:
 * - a backend on this host's loopback answers from 127.0.0.0/8 (::1) to the client's address, a
 *   packet the main table would send out of the host: `ip rule from 127.0.0.0/8 iif lo lookup
 *   <routeTable>` (iif lo: only this host's own packets) makes it local, and it reaches the
 *   transparent socket (what go-mmproxy's README asks users to type by hand);
 * - a backend on another host routes its answers to the client through this host: the divert rule
 *   (`socket transparent`) marks them, and the fwmark rule makes them local.
 */
export interface MmproxyRules {
  /** Families whose backend is (or may be, when the header names it) on this host's loopback. */
  readonly loopback: readonly Family[];
  /** Families whose backend is (or may be) on another host: divert and fwmark routing. */
  readonly divert: readonly Family[];
  /** Transports relayed (TCP, UDP): the divert rules of these transports. */
  readonly transports: readonly Transport[];
  /** SO_MARK of the mmproxy listeners' backend sockets, each once. */
  readonly upstreamMarks: readonly number[];
  /** The fixed backends (not planned: doctor follows their replies), and the families whose backend the header names. */
  readonly backends?: readonly MmproxyBackend[];
}

export interface MmproxyBackend {
  readonly listener: string;
  /** The listener's protocol: whose reply (SYN-ACK or datagram) doctor follows. */
  readonly transport: Transport;
  readonly family: Family;
  /** Absent: the header's destination (unknown until a flow comes). */
  readonly address?: string;
  readonly port?: number;
  readonly upstreamMark: number;
}

export interface RulesConfig {
  /** Name of our nftables table (family inet); also the prefix of our iptables chains. */
  readonly tableName: string;
  /** Each listener intercepts its own ports to its own port; no two intercept the same traffic. */
  readonly listeners: readonly ListenerRules[];
  /**
   * Listeners of an earlier configuration whose flows are still finishing after a reload. They get
   * no tproxy rules (they accept nothing new), but keep what carries their established flows: the
   * divert rule of each of their transports, their families (policy routing) and their upstream mark.
   */
  readonly draining?: readonly ListenerRules[];
  /** Families the rules are installed for (sets, bypass, policy routing): every listener's, draining ones' too. */
  readonly families: readonly Family[];
  /** Restrict interception to these incoming interfaces (empty: all). */
  readonly interfaces: readonly string[];
  readonly bypass: BypassConfig;
  /** Intercept locally generated traffic too (undefined: no). */
  readonly localTraffic?: LocalTrafficConfig;
  readonly mangle: MangleConfig;
  readonly failMode: FailMode;
  /** fwmark set on intercepted packets; the policy rule routes it to the local table. */
  readonly fwmark: number;
  readonly fwmarkMask: number;
  readonly routeTable: number;
  readonly rulePriority: number;
  /** The reply routing of the mmproxy listeners (absent: none configured). */
  readonly mmproxy?: MmproxyRules;
}

export const DEFAULT_LISTENER_RULES: Omit<ListenerRules, 'intercept'> = {
  name: 'main',
  port: 8000,
  addresses: {},
  families: [4, 6],
  upstreamMark: 0x2,
};

export const DEFAULT_RULES_CONFIG: Omit<RulesConfig, 'listeners'> = {
  tableName: 'tproxy_rules',
  families: [4, 6],
  interfaces: [],
  bypass: { destinations: DEFAULT_BYPASS_DESTINATIONS, sources: [] },
  mangle: {},
  failMode: 'drop',
  fwmark: 0x1,
  fwmarkMask: 0x1,
  routeTable: 100,
  rulePriority: 9000,
};

/** A configuration of one listener on `port` intercepting `intercept`, for `families`. */
export function singleListenerRules(intercept: readonly InterceptSpec[], listener: Partial<Omit<ListenerRules, 'intercept'>> = {}, config: Partial<Omit<RulesConfig, 'listeners'>> = {}): RulesConfig {
  const families = listener.families ?? config.families ?? DEFAULT_RULES_CONFIG.families;
  return { ...DEFAULT_RULES_CONFIG, families, ...config, listeners: [{ ...DEFAULT_LISTENER_RULES, families, ...listener, intercept }] };
}

/** The upstream marks of the listeners, draining ones too, then the mmproxy listeners', each once, in listener order. */
export function upstreamMarks(config: RulesConfig): number[] {
  return [...new Set([...[...config.listeners, ...(config.draining ?? [])].map((l) => l.upstreamMark), ...(config.mmproxy?.upstreamMarks ?? [])])];
}

// The model against the kernel: chains, priorities, verdicts, matches and statements (nftables).
// Mostly UDP, so every rule counter is compared too.
import type { Scenario } from '../../../helpers/differential.js';
import type { SocketSpec } from '../../../helpers/model-agent.js';

const S4 = '203.0.113.20';
const S6 = '2001:db8:2::20';
const chain = (name: string, prio: number | string, rules: string, policy = 'accept', hook = 'prerouting', type = 'filter'): string =>
  `  chain ${name} { type ${type} hook ${hook} priority ${prio}; policy ${policy};\n${rules}\n  }`;
const table = (...parts: string[]): string => `table inet tp {\n${parts.join('\n')}\n}`;
const TP = 'meta l4proto udp udp dport 53 tproxy to :8053 meta mark set meta mark or 0x1 counter accept';
const sockets: SocketSpec[] = [
  { id: 'udp4', proto: 'udp', address: '0.0.0.0', port: 8053, transparent: true },
  { id: 'udp6', proto: 'udp', address: '::', port: 8053, transparent: true },
];
const u = (sport: number, daddr: string, dport: number, expect: Scenario['probes'][number]['expect'], extra: Partial<Scenario['probes'][number]> = {}): Scenario['probes'][number] => ({
  proto: 'udp',
  sport,
  daddr,
  dport,
  expect,
  ...extra,
});

export const SCENARIOS: Scenario[] = [
  {
    name: 'accept ends one base chain only: a later base chain on the hook still drops',
    nft: table(chain('a', -150, 'udp dport 53 counter accept'), chain('b', 0, 'udp dport 53 counter drop\ncounter')),
    probes: [u(42001, S4, 53, 'dropped'), u(42002, S6, 54, 'forwarded')],
  },
  {
    name: 'drop in an early chain (raw priority) ends everything: tproxy later never runs',
    nft: table(chain('raw', 'raw', 'udp dport 53 ip saddr 198.51.100.10 counter drop'), chain('pre', 'mangle', TP)),
    sockets,
    probes: [u(42011, S4, 53, 'dropped'), u(42012, S6, 53, 'delivered')],
  },
  {
    name: 'chains run by priority: the later chain sees the mark the earlier one set',
    nft: table(chain('late', -100, 'meta mark 0x10 counter meta mark set meta mark or 0x100\n' + TP), chain('early', -200, 'udp dport 53 counter meta mark set 0x10')),
    sockets,
    probes: [u(42021, S4, 53, 'delivered'), u(42022, S6, 53, 'delivered')],
  },
  {
    name: 'mark arithmetic with masks: and/or/xor keep the other bits',
    nft: table(chain('pre', 'mangle', 'udp dport 53 meta mark set 0xab00 counter\nudp dport 53 meta mark set meta mark and 0xfff0ffff xor 0x30 counter\nmeta mark & 0xff00 == 0xab00 counter\n' + TP)),
    sockets,
    probes: [u(42031, S4, 53, 'delivered'), u(42032, S6, 53, 'delivered')],
  },
  {
    name: 'fwmark ip rule with a mask: 0x100/0xff00 matches a mark of 0x1ff, not 0x200',
    nft: table(chain('pre', 'mangle', 'udp dport 53 tproxy to :8053 meta mark set 0x1ff counter accept\nudp dport 54 tproxy to :8053 meta mark set 0x200 counter accept')),
    routing: 'none',
    ip: ['rule add fwmark 0x100/0xff00 lookup 100 pref 100', 'route add local 0.0.0.0/0 dev lo table 100'],
    ip6: ['rule add fwmark 0x100/0xff00 lookup 100 pref 100', 'route add local ::/0 dev lo table 100'],
    sockets,
    probes: [u(42041, S4, 53, 'delivered'), u(42042, S6, 53, 'delivered'), u(42043, S4, 54, 'dropped')],
  },
  {
    name: 'jump and return: a bypass chain returns some traffic, the rest is intercepted',
    nft: table(chain('pre', 'mangle', 'meta l4proto udp counter jump bypass\n' + TP), '  chain bypass {\n    udp sport 42052 counter return\n    ip6 saddr 2001:db8:1::10 udp sport 42053 counter accept\n    counter\n  }'),
    sockets,
    probes: [u(42051, S4, 53, 'delivered'), u(42052, S4, 53, 'delivered'), u(42053, S6, 53, 'forwarded')],
  },
  {
    name: 'goto does not come back: the rule after it never runs, the base policy applies',
    nft: table(chain('pre', 'mangle', 'udp sport 42061 counter goto side\n' + TP), '  chain side {\n    counter meta mark set 0x4\n  }'),
    sockets,
    probes: [u(42061, S4, 53, 'forwarded'), u(42062, S4, 53, 'delivered')],
  },
  {
    name: 'policy drop: only what is accepted passes',
    nft: table(chain('pre', 'mangle', TP + '\nudp dport 55 counter accept', 'drop')),
    sockets,
    probes: [u(42071, S4, 53, 'delivered'), u(42072, S6, 55, 'forwarded'), u(42073, S4, 56, 'dropped')],
  },
  {
    name: 'bypass by a named set of destinations; tproxy takes addresses that do not even exist',
    nft: table(
      '  set bypass4 { type ipv4_addr; flags interval; elements = { 203.0.113.16/29, 192.0.2.0/24 } }\n  set bypass6 { type ipv6_addr; flags interval; elements = { 2001:db8:2::20 } }',
      chain('pre', 'mangle', 'ip daddr @bypass4 counter return\nip6 daddr @bypass6 counter return\n' + TP),
    ),
    sockets,
    probes: [u(42081, S4, 53, 'forwarded'), u(42082, '203.0.113.99', 53, 'delivered'), u(42083, S6, 53, 'forwarded'), u(42084, '2001:db8:2::99', 53, 'delivered')],
  },
  {
    name: 'anonymous sets of ports with ranges, and meta l4proto sets',
    nft: table(chain('pre', 'mangle', 'meta l4proto { tcp, udp } th dport { 53, 5000-5010 } tproxy to :8053 meta mark set 0x1 counter accept')),
    sockets,
    probes: [u(42091, S4, 5005, 'delivered'), u(42092, S6, 5011, 'forwarded'), u(42093, S6, 53, 'delivered')],
  },
  {
    // The iifname rule counts UDP only: the kernel's own packets on the other links (neighbour
    // discovery of a long run) would move its counter between probes.
    name: 'negations: iifname !=, ip saddr != prefix, th dport != set',
    nft: table(chain('pre', 'mangle', 'iifname != "to-client" meta l4proto udp counter return\nip saddr != 198.51.100.0/24 counter return\nudp dport != { 53, 54 } counter return\n' + TP + '\nudp dport 54 tproxy to :8053 meta mark set 0x1 counter accept')),
    sockets,
    probes: [u(42101, S4, 53, 'delivered'), u(42102, S4, 54, 'delivered'), u(42103, S4, 55, 'forwarded'), u(42104, S6, 54, 'delivered')],
  },
  {
    name: 'meta nfproto and ip6 nexthdr select a family',
    nft: table(chain('pre', 'mangle', 'meta nfproto ipv6 ip6 nexthdr udp counter return\n' + TP)),
    sockets,
    probes: [u(42111, S4, 53, 'delivered'), u(42112, S6, 53, 'forwarded')],
  },
  {
    name: 'ct state: a first datagram is new',
    nft: table(chain('pre', 'mangle', 'ct state established,related counter return\nct state new udp dport 53 counter meta mark set 0x20\n' + TP)),
    sockets,
    probes: [u(42121, S4, 53, 'delivered'), u(42122, S6, 53, 'delivered')],
  },
  {
    name: 'fib daddr type local: traffic for the router itself is left alone',
    nft: table(chain('pre', 'mangle', 'fib daddr type local counter accept\n' + TP)),
    sockets,
    probes: [u(42131, '198.51.100.1', 53, 'input-no-socket'), u(42132, S4, 53, 'delivered'), u(42133, '2001:db8:1::1', 53, 'input-no-socket')],
  },
  {
    name: 'socket wildcard: a wildcard-bound plain socket takes marked traffic by the ordinary lookup',
    nft: table(chain('pre', 'mangle', 'meta l4proto udp socket wildcard 1 counter meta mark set 0x1 accept')),
    sockets: [{ id: 'plain4', proto: 'udp', address: '0.0.0.0', port: 5353 }, { id: 'bound6', proto: 'udp', address: '2001:db8:1::1', port: 5353 }],
    probes: [u(42141, S4, 5353, 'delivered', { socket: 'plain4' }), u(42142, S6, 5353, 'forwarded'), u(42143, S4, 5354, 'forwarded')],
  },
  {
    name: 'reject ends the packet like drop',
    nft: table(chain('pre', 'mangle', 'udp dport 53 counter reject\nudp dport 54 counter reject with icmpx admin-prohibited')),
    probes: [u(42151, S4, 53, 'dropped'), u(42152, S6, 54, 'dropped'), u(42153, S6, 55, 'forwarded')],
  },
  {
    name: 'DSCP and TTL set in prerouting, seen at the server after forwarding',
    nft: table(chain('pre', 'mangle', 'udp dport 60 counter ip dscp set cs1 ip ttl set 9\nudp dport 60 counter ip6 dscp set af11 ip6 hoplimit set 7\nudp dport 61 log prefix "tp " counter ip dscp set ef')),
    probes: [u(42161, S4, 60, 'forwarded'), u(42162, S6, 60, 'forwarded'), u(42163, S4, 61, 'forwarded'), u(42164, S6, 62, 'forwarded', { ttl: 30 })],
  },
  {
    name: 'DSCP, TTL and mark at the proxy socket after tproxy',
    nft: table(chain('pre', 'mangle', 'udp dport 53 ip dscp set af21 ip ttl set 33 counter\nudp dport 53 ip6 dscp set cs5 ip6 hoplimit set 3 counter\n' + TP)),
    sockets,
    probes: [u(42171, S4, 53, 'delivered'), u(42172, S6, 53, 'delivered')],
  },
  {
    name: 'a TTL of 1 expires in forwarding, but is delivered through tproxy',
    nft: table(chain('pre', 'mangle', TP)),
    sockets,
    probes: [u(42181, S4, 54, 'dropped', { ttl: 1 }), u(42182, S4, 53, 'delivered', { ttl: 1 }), u(42183, S6, 54, 'dropped', { ttl: 1 })],
  },
  {
    name: 'ip and ip6 family tables next to an inet table on the same hook',
    nft: `table ip four {\n${chain('pre', -200, 'udp dport 53 counter meta mark set 0x40')}\n}\ntable ip6 six {\n${chain('pre', -200, 'udp dport 53 counter drop')}\n}\n${table(chain('pre', 'mangle', 'meta mark 0x40 ' + TP))}`,
    sockets,
    probes: [u(42191, S4, 53, 'delivered'), u(42192, S6, 53, 'dropped')],
  },
];


// The model against the kernel: iptables mangle (xt TPROXY, MARK, TOS, TTL, -m socket), policy
// routing (rules, masks, not, shadowing, route types, throw, suppress_prefixlength), forwarding
// sysctls, and the host's own traffic rerouted from output into the proxy.
import type { Probe, Scenario } from '../../../helpers/differential.js';
import type { SocketSpec } from '../../../helpers/model-agent.js';

const S4 = '203.0.113.20';
const S6 = '2001:db8:2::20';
const mangle = (...rules: string[]): string => `*mangle\n${rules.join('\n')}\nCOMMIT\n`;
const nft = (body: string): string => `table inet tp {\n${body}\n}`;
const PRE = (rules: string): string => `  chain pre { type filter hook prerouting priority mangle; policy accept;\n${rules}\n  }`;
const TP_UDP = 'meta l4proto udp udp dport 53 tproxy to :8053 meta mark set 0x1 counter accept';
const TP_TCP = 'meta l4proto tcp tcp dport 80 tproxy to :8000 meta mark set 0x1 counter accept';
const sockets: SocketSpec[] = [
  { id: 'tcp4', proto: 'tcp', address: '0.0.0.0', port: 8000, transparent: true },
  { id: 'tcp6', proto: 'tcp', address: '::', port: 8000, transparent: true },
  { id: 'udp4', proto: 'udp', address: '0.0.0.0', port: 8053, transparent: true },
  { id: 'udp6', proto: 'udp', address: '::', port: 8053, transparent: true },
];
const u = (sport: number, daddr: string, dport: number, expect: Probe['expect'], extra: Partial<Probe> = {}): Probe => ({ proto: 'udp', sport, daddr, dport, expect, ...extra });
const t = (sport: number, daddr: string, dport: number, expect: Probe['expect'], extra: Partial<Probe> = {}): Probe => ({ proto: 'tcp', sport, daddr, dport, expect, ...extra });
const XT4 = '-A PREROUTING -p udp -m udp --dport 53 -j TPROXY --on-port 8053 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1';
const XT6 = '-A PREROUTING -p udp -m udp --dport 53 -j TPROXY --on-port 8053 --on-ip :: --tproxy-mark 0x1/0x1';

export const SCENARIOS: Scenario[] = [
  {
    name: 'xt TPROXY with a transparent socket delivers and sets its mark (iptables and ip6tables)',
    iptables: { ipv4: mangle(XT4), ipv6: mangle(XT6) },
    sockets,
    probes: [u(43001, S4, 53, 'delivered', { socket: 'udp4' }), u(43002, S6, 53, 'delivered', { socket: 'udp6' }), u(43003, S4, 54, 'forwarded')],
  },
  {
    name: 'xt TPROXY with no socket drops (unlike nft tproxy)',
    iptables: { ipv4: mangle(XT4), ipv6: mangle(XT6) },
    probes: [u(43011, S4, 53, 'dropped'), u(43012, S6, 53, 'dropped')],
  },
  {
    name: 'xt TPROXY with a listener lacking IP_TRANSPARENT drops',
    iptables: { ipv4: mangle('-A PREROUTING -p tcp -m tcp --dport 80 -j TPROXY --on-port 8000 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1'), ipv6: mangle(XT6) },
    sockets: sockets.map((s) => ({ ...s, transparent: false })),
    probes: [t(43021, S4, 80, 'dropped'), u(43022, S6, 53, 'dropped')],
  },
  {
    name: 'iptables DIVERT chain: -m socket --transparent marks an established flow local',
    iptables: {
      ipv4: mangle(':DIVERT - [0:0]', '-A PREROUTING -p tcp -m socket --transparent -j DIVERT', '-A PREROUTING -p tcp -m tcp --dport 80 -j TPROXY --on-port 8000 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1', '-A DIVERT -j MARK --set-xmark 0x1/0xffffffff', '-A DIVERT -j ACCEPT'),
    },
    sockets,
    setup: [{ proto: 'tcp', sport: 43031, daddr: S4, dport: 80, mode: 'hold' }],
    probes: [t(43031, S4, 80, 'delivered', { data: true })],
  },
  {
    name: 'iptables MARK with a mask, -m mark, TTL, TOS and DSCP targets; seen at the server',
    iptables: {
      ipv4: mangle('-A PREROUTING -p udp -m udp --dport 60 -j MARK --set-xmark 0x10/0xf0', '-A PREROUTING -m mark --mark 0x10/0xf0 -j TTL --ttl-set 9', '-A PREROUTING -p udp -m udp --dport 60 -j TOS --set-tos 0x20/0xff', '-A PREROUTING -p udp -m udp --dport 61 -j DSCP --set-dscp 0x0a'),
      ipv6: mangle('-A PREROUTING -p udp -m udp --dport 60 -j HL --hl-set 5', '-A PREROUTING -p udp -m udp --dport 60 -j DSCP --set-dscp 0x2e'),
    },
    probes: [u(43041, S4, 60, 'forwarded'), u(43042, S4, 61, 'forwarded'), u(43043, S6, 60, 'forwarded')],
  },
  {
    name: 'iptables matches: ! -s, -d, -i, multiport, --tcp-flags, conntrack, addrtype',
    iptables: {
      ipv4: mangle(
        '-A PREROUTING ! -s 198.51.100.0/24 -j RETURN',
        '-A PREROUTING -d 203.0.113.20/32 -p tcp -m tcp --dport 80 -j RETURN',
        '-A PREROUTING -m addrtype --dst-type LOCAL -j RETURN',
        // Flags and state on the TPROXY rule itself would keep the handshake's ACK from its socket.
        '-A PREROUTING -p tcp -m tcp --tcp-flags SYN,ACK SYN -m conntrack --ctstate NEW -j MARK --set-xmark 0x4/0x4',
        '-A PREROUTING -i to-client -p tcp -m multiport --dports 80,443 -j TPROXY --on-port 8000 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1',
      ),
    },
    sockets,
    probes: [t(43051, S4, 443, 'delivered', { socket: 'tcp4' }), t(43052, S4, 80, 'forwarded'), t(43053, '198.51.100.1', 80, 'input-no-socket'), t(43054, S4, 22, 'forwarded')],
  },
  {
    name: 'nft and iptables together: an nft mark at priority -200 steers an iptables TPROXY rule',
    nft: nft('  chain early { type filter hook prerouting priority -200; policy accept;\n    udp dport 53 ip saddr 198.51.100.10 counter meta mark set 0x8\n  }'),
    iptables: { ipv4: mangle('-A PREROUTING -p udp -m mark --mark 0x8 -j TPROXY --on-port 8053 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1') },
    sockets,
    probes: [u(43061, S4, 53, 'delivered'), u(43062, S6, 53, 'forwarded')],
  },
  {
    name: 'an earlier ip rule shadows the fwmark rule (another table routes marked packets away)',
    nft: nft(PRE(`${TP_UDP}\n${TP_TCP}`)),
    ip: ['route add default via 203.0.113.20 dev to-server table 200', 'rule add fwmark 0x1 lookup 200 pref 50'],
    ip6: ['route add default via 2001:db8:2::20 dev to-server table 200', 'rule add fwmark 0x1 lookup 200 pref 50'],
    sockets,
    probes: [u(43071, S4, 53, 'dropped'), t(43072, S6, 80, 'dropped'), u(43073, S4, 54, 'forwarded')],
  },
  {
    name: 'a "not fwmark" rule sends unmarked traffic to a blackhole table, marked traffic on to the proxy',
    nft: nft(PRE(TP_UDP)),
    ip: ['route add blackhole default table 200', 'rule add not fwmark 0x1/0x1 lookup 200 pref 50'],
    ip6: ['route add blackhole default table 200', 'rule add not fwmark 0x1/0x1 lookup 200 pref 50'],
    sockets,
    probes: [u(43081, S4, 53, 'delivered'), u(43082, S6, 54, 'dropped'), u(43083, S4, 54, 'dropped')],
  },
  {
    name: 'route types: blackhole, unreachable and prohibit drop; longest prefix wins',
    ip: ['route add blackhole 203.0.113.128/25', 'route add unreachable 203.0.113.64/26', 'route add prohibit 203.0.113.32/27', 'route add 203.0.113.99/32 dev to-server'],
    ip6: ['route add blackhole 2001:db8:2::100/128', 'route add prohibit 2001:db8:2::200/128'],
    probes: [u(43091, '203.0.113.200', 53, 'dropped'), u(43092, '203.0.113.70', 53, 'dropped'), u(43093, '203.0.113.40', 53, 'dropped'), u(43094, '2001:db8:2::100', 53, 'dropped'), u(43095, '2001:db8:2::200', 53, 'dropped'), u(43096, S4, 53, 'forwarded')],
  },
  {
    name: 'a throw route in the fwmark table falls through to main: tproxied packets to it are dropped',
    nft: nft(PRE(TP_UDP)),
    ip: ['route add throw 203.0.113.20/32 table 100'],
    ip6: ['route add throw 2001:db8:2::20/128 table 100'],
    sockets,
    probes: [u(43101, S4, 53, 'dropped'), u(43102, '203.0.113.99', 53, 'delivered'), u(43103, S6, 53, 'dropped')],
  },
  {
    name: 'suppress_prefixlength 0 before the fwmark rule (WireGuard style) shadows it for routed prefixes',
    nft: nft(PRE(TP_UDP)),
    ip: ['rule add lookup main suppress_prefixlength 0 pref 50'],
    ip6: ['rule add lookup main suppress_prefixlength 0 pref 50'],
    sockets,
    probes: [u(43111, S4, 53, 'dropped'), u(43112, '192.0.2.7', 53, 'delivered'), u(43113, S6, 53, 'dropped')],
  },
  {
    name: 'ip rules with iif, from and to selectors',
    nft: nft(PRE(TP_UDP)),
    routing: 'none',
    ip: ['route add local 0.0.0.0/0 dev lo table 100', 'rule add iif to-client fwmark 0x1 lookup 100 pref 100', 'rule add to 203.0.113.98/32 lookup 100 pref 110'],
    ip6: ['route add local ::/0 dev lo table 100', 'rule add from 2001:db8:1::/64 fwmark 0x1 lookup 100 pref 100'],
    sockets: [...sockets, { id: 'plain', proto: 'udp', address: '0.0.0.0', port: 5353 }],
    probes: [u(43121, S4, 53, 'delivered'), u(43122, S6, 53, 'delivered'), u(43123, '203.0.113.98', 5353, 'delivered', { socket: 'plain' }), u(43124, S4, 5353, 'forwarded')],
  },
  {
    name: 'forwarding disabled: forwarded packets are dropped, tproxy still delivers',
    nft: nft(PRE(TP_UDP)),
    sysctls: ['net.ipv4.ip_forward=0', 'net.ipv6.conf.all.forwarding=0'],
    sockets,
    probes: [u(43131, S4, 53, 'delivered'), u(43132, S4, 54, 'dropped'), u(43133, S6, 53, 'delivered'), u(43134, S6, 54, 'dropped')],
  },
  {
    name: 'local TCP rerouted from output through lo into the proxy (IPv4 and IPv6); other ports leave',
    nft: nft(`  chain out { type route hook output priority mangle; policy accept;\n    tcp dport 80 counter meta mark set 0x1\n  }\n${PRE(`iifname "lo" ${TP_TCP}`)}`),
    sockets,
    probes: [t(43141, S4, 80, 'delivered', { from: 'router', socket: 'tcp4' }), t(43142, S6, 80, 'delivered', { from: 'router', socket: 'tcp6' }), t(43143, S4, 81, 'forwarded', { from: 'router' })],
  },
  {
    name: 'local UDP rerouted from output with counters; a filter-type output chain does not reroute',
    nft: nft(
      `  chain out { type route hook output priority mangle; policy accept;\n    udp dport 53 counter meta mark set 0x1\n  }\n  chain outf { type filter hook output priority 0; policy accept;\n    udp dport 54 counter meta mark set 0x1\n  }\n${PRE(`iifname "lo" meta l4proto udp udp dport { 53, 54 } tproxy to :8053 meta mark set 0x1 counter accept`)}`,
    ),
    sockets,
    probes: [u(43151, S4, 53, 'delivered', { from: 'router' }), u(43152, S6, 53, 'delivered', { from: 'router' }), u(43153, S4, 54, 'forwarded', { from: 'router' })],
  },
  {
    name: 'local traffic marked in output with no proxy socket loops to lo and finds no socket',
    nft: nft(`  chain out { type route hook output priority mangle; policy accept;\n    udp dport 53 counter meta mark set 0x1\n  }\n${PRE(`iifname "lo" ${TP_UDP}`)}`),
    probes: [u(43161, S4, 53, 'input-no-socket', { from: 'router' }), u(43162, S6, 53, 'input-no-socket', { from: 'router' })],
  },
  {
    name: 'iptables mangle OUTPUT marking reroutes local traffic into an nft tproxy rule',
    iptables: { ipv4: mangle('-A OUTPUT -p udp -m udp --dport 53 -j MARK --set-xmark 0x1/0xffffffff') },
    nft: nft(PRE(`iifname "lo" ${TP_UDP}`)),
    sockets,
    probes: [u(43171, S4, 53, 'delivered', { from: 'router' }), u(43172, S6, 53, 'forwarded', { from: 'router' })],
  },
];


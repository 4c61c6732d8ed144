// The model against the kernel, nftables tproxy: sockets, listeners, TIME_WAIT, divert, routing
// faults; IPv4 and IPv6. Each scenario builds its world on a lab router and sends real packets.
import type { Scenario } from '../../../helpers/differential.js';
import type { SocketSpec } from '../../../helpers/model-agent.js';
import { probedAfterSetup } from '../../../helpers/scenario-probes.js';

const S4 = '203.0.113.20';
const S6 = '2001:db8:2::20';
const pre = (rules: string, extra = ''): string => `table inet tp {\n  chain pre { type filter hook prerouting priority mangle; policy accept;\n${rules}\n  }\n${extra}\n}`;
const TPROXY_TCP = 'meta l4proto tcp th dport 80 tproxy to :8000 meta mark set 0x1 counter accept';
const TPROXY_UDP = 'meta l4proto udp th dport 53 tproxy to :8053 meta mark set 0x1 counter accept';
const DIVERT = 'meta l4proto tcp tcp flags & (syn | ack) != syn socket transparent 1 meta mark set 0x1 counter accept';
const listeners: SocketSpec[] = [
  { id: 'tcp4', proto: 'tcp', address: '0.0.0.0', port: 8000, transparent: true },
  { id: 'tcp6', proto: 'tcp', address: '::', port: 8000, transparent: true },
  { id: 'udp4', proto: 'udp', address: '0.0.0.0', port: 8053, transparent: true },
  { id: 'udp6', proto: 'udp', address: '::', port: 8053, transparent: true },
];
const opaque = listeners.map((l) => ({ ...l, transparent: false }));

export const SCENARIOS: Scenario[] = [
  {
    name: 'tproxy TCP to a transparent listener, IPv4 and IPv6; other ports forwarded',
    nft: pre(TPROXY_TCP),
    sockets: listeners,
    probes: [
      { proto: 'tcp', sport: 41001, daddr: S4, dport: 80, expect: 'delivered', socket: 'tcp4' },
      { proto: 'tcp', sport: 41002, daddr: S6, dport: 80, expect: 'delivered', socket: 'tcp6' },
      { proto: 'tcp', sport: 41003, daddr: S4, dport: 81, expect: 'forwarded' },
    ],
  },
  {
    name: 'tproxy UDP to a transparent socket with counters, IPv4 and IPv6',
    nft: pre(TPROXY_UDP),
    sockets: listeners,
    probes: [
      { proto: 'udp', sport: 41011, daddr: S4, dport: 53, expect: 'delivered', socket: 'udp4' },
      { proto: 'udp', sport: 41012, daddr: S6, dport: 53, expect: 'delivered', socket: 'udp6' },
      { proto: 'udp', sport: 41013, daddr: S6, dport: 54, expect: 'forwarded' },
    ],
  },
  {
    name: 'listener without IP_TRANSPARENT: nft tproxy does not match, traffic forwarded (fail-open)',
    nft: pre(`${TPROXY_TCP}\n${TPROXY_UDP}`),
    sockets: opaque,
    probes: [
      { proto: 'tcp', sport: 41021, daddr: S4, dport: 80, expect: 'forwarded' },
      { proto: 'tcp', sport: 41022, daddr: S6, dport: 80, expect: 'forwarded' },
      { proto: 'udp', sport: 41023, daddr: S4, dport: 53, expect: 'forwarded' },
    ],
  },
  {
    name: 'no listener at all: nft tproxy does not match, UDP forwarded with counters unmoved',
    nft: pre(TPROXY_UDP),
    probes: [
      { proto: 'udp', sport: 41031, daddr: S4, dport: 53, expect: 'forwarded' },
      { proto: 'udp', sport: 41032, daddr: S6, dport: 53, expect: 'forwarded' },
    ],
  },
  {
    name: 'tproxy without an address uses the input interface address: a listener on another address does not count',
    nft: pre(TPROXY_UDP),
    sockets: [
      { id: 'wrong4', proto: 'udp', address: '203.0.113.1', port: 8053, transparent: true },
      { id: 'right6', proto: 'udp', address: '2001:db8:1::1', port: 8053, transparent: true },
    ],
    probes: [
      { proto: 'udp', sport: 41041, daddr: S4, dport: 53, expect: 'forwarded' },
      { proto: 'udp', sport: 41042, daddr: S6, dport: 53, expect: 'delivered', socket: 'right6' },
    ],
  },
  {
    name: 'tproxy to an explicit address and port (ip and ip6 forms)',
    nft: pre('meta l4proto udp udp dport 53 tproxy ip to 203.0.113.1:8054 meta mark set 0x1 accept\nmeta l4proto udp udp dport 53 tproxy ip6 to [2001:db8:2::1]:8054 meta mark set 0x1 accept'),
    sockets: [
      { id: 'v4', proto: 'udp', address: '203.0.113.1', port: 8054, transparent: true },
      { id: 'v6', proto: 'udp', address: '2001:db8:2::1', port: 8054, transparent: true },
      ...listeners,
    ],
    probes: [
      { proto: 'udp', sport: 41051, daddr: S4, dport: 53, expect: 'delivered', socket: 'v4' },
      { proto: 'udp', sport: 41052, daddr: S6, dport: 53, expect: 'delivered', socket: 'v6' },
    ],
  },
  {
    name: 'tproxy with an address and no port keeps the destination port',
    nft: pre('meta l4proto tcp tcp dport 5201 tproxy ip to 198.51.100.1 meta mark set 0x1 accept'),
    sockets: [{ id: 'p5201', proto: 'tcp', address: '198.51.100.1', port: 5201, transparent: true }],
    probes: [
      { proto: 'tcp', sport: 41061, daddr: S4, dport: 5201, expect: 'delivered', socket: 'p5201' },
      { proto: 'tcp', sport: 41062, daddr: S6, dport: 5201, expect: 'forwarded' },
    ],
  },
  {
    name: 'tproxy ip in an inet table does not touch IPv6',
    nft: pre('meta l4proto udp udp dport 53 tproxy ip to :8053 meta mark set 0x1 accept'),
    sockets: listeners,
    probes: [
      { proto: 'udp', sport: 41071, daddr: S4, dport: 53, expect: 'delivered', socket: 'udp4' },
      { proto: 'udp', sport: 41072, daddr: S6, dport: 53, expect: 'forwarded' },
    ],
  },
  {
    name: 'missing fwmark ip rule: the socket is assigned but routing forwards, so the kernel drops',
    nft: pre(`${TPROXY_TCP}\n${TPROXY_UDP}`),
    routing: 'no-rule',
    sockets: listeners,
    probes: [
      { proto: 'tcp', sport: 41081, daddr: S4, dport: 80, expect: 'dropped' },
      { proto: 'udp', sport: 41082, daddr: S6, dport: 53, expect: 'dropped' },
      { proto: 'udp', sport: 41083, daddr: S4, dport: 54, expect: 'forwarded' },
    ],
  },
  {
    name: 'missing local route in the fwmark table: falls through to main, dropped',
    nft: pre(`${TPROXY_TCP}\n${TPROXY_UDP}`),
    routing: 'no-route',
    sockets: listeners,
    probes: [
      { proto: 'udp', sport: 41091, daddr: S4, dport: 53, expect: 'dropped' },
      { proto: 'tcp', sport: 41092, daddr: S6, dport: 80, expect: 'dropped' },
    ],
  },
  {
    name: 'divert: data of an established proxied flow reaches its socket through the socket match',
    nft: pre(`${DIVERT}\n${TPROXY_TCP}`),
    sockets: listeners,
    ...probedAfterSetup('hold', [{ sport: 41101, daddr: S4 }, { sport: 41102, daddr: S6 }], 'delivered'),
  },
  {
    name: 'without divert, the tproxy established lookup still finds the flow',
    nft: pre(TPROXY_TCP),
    sockets: listeners,
    ...probedAfterSetup('hold', [{ sport: 41111, daddr: S4 }], 'delivered'),
  },
  {
    name: 'tproxy for SYNs only and no divert: early demux gives the packet the socket of the flow and forwarding drops it',
    nft: pre('meta l4proto tcp tcp dport 80 tcp flags & (syn | ack) == syn tproxy to :8000 meta mark set 0x1 accept'),
    sockets: listeners,
    ...probedAfterSetup('hold', [{ sport: 41121, daddr: S6 }, { sport: 41122, daddr: S4 }], 'dropped'),
  },
  {
    name: 'TIME_WAIT reuse: a new SYN retires the TIME_WAIT socket for the listener (divert excludes SYNs)',
    nft: pre(`${DIVERT}\n${TPROXY_TCP}`),
    sockets: listeners.map((l) => ({ ...l, closeFirst: true })),
    ...probedAfterSetup('time-wait', [{ sport: 41131, daddr: S4, socket: 'tcp4' }, { sport: 41132, daddr: S6, socket: 'tcp6' }], 'delivered'),
  },
  {
    name: 'TIME_WAIT: a divert rule that catches SYNs sends them to the TIME_WAIT socket, not the proxy',
    nft: pre(`meta l4proto tcp socket transparent 1 meta mark set 0x1 accept\n${TPROXY_TCP}`),
    // The client would answer the TIME_WAIT socket's ACK with a reset, which retires it before the
    // SYN is sent again; holding the reset back keeps the first SYN's fate observable.
    clientNft: 'table inet hold {\n  chain out { type filter hook output priority 0;\n    tcp flags rst drop\n  }\n}',
    sockets: listeners.map((l) => ({ ...l, closeFirst: true })),
    ...probedAfterSetup('time-wait', [{ sport: 41141, daddr: S4 }], 'input-no-socket'),
  },
];


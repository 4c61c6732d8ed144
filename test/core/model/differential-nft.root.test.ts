// The model against the kernel: nftables scenarios (tproxy, marks, chains, routing), IPv4 and IPv6.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DifferentialLab, type Scenario } from '../../helpers/differential.js';

const S4 = '203.0.113.20';
const S6 = '2001:db8:2::20';
const table = (body: string): string => `table inet tp {\n${body}\n}`;
const pre = (rules: string, extra = ''): string => table(`  chain pre { type filter hook prerouting priority mangle; policy accept;\n${rules}\n  }\n${extra}`);
const TPROXY_TCP = 'meta l4proto tcp th dport 80 tproxy to :8000 meta mark set 0x1 counter accept';
const TPROXY_UDP = 'meta l4proto udp th dport 53 tproxy to :8053 meta mark set 0x1 counter accept';
const listeners = [
  { id: 'tcp4', proto: 'tcp', address: '0.0.0.0', port: 8000, transparent: true },
  { id: 'tcp6', proto: 'tcp', address: '::', port: 8000, transparent: true },
  { id: 'udp4', proto: 'udp', address: '0.0.0.0', port: 8053, transparent: true },
  { id: 'udp6', proto: 'udp', address: '::', port: 8053, transparent: true },
] as const;

export const NFT_SCENARIOS: Scenario[] = [
  {
    name: 'tproxy TCP to a transparent listener, IPv4 and IPv6',
    nft: pre(TPROXY_TCP),
    sockets: [...listeners],
    probes: [
      { proto: 'tcp', sport: 41001, daddr: S4, dport: 80, expect: 'delivered', socket: 'tcp4' },
      { proto: 'tcp', sport: 41002, daddr: S6, dport: 80, expect: 'delivered', socket: 'tcp6' },
      { proto: 'tcp', sport: 41003, daddr: S4, dport: 81, expect: 'forwarded' },
    ],
  },
  {
    name: 'tproxy UDP to a transparent socket, counters, IPv4 and IPv6',
    nft: pre(TPROXY_UDP),
    sockets: [...listeners],
    probes: [
      { proto: 'udp', sport: 41011, daddr: S4, dport: 53, expect: 'delivered', socket: 'udp4' },
      { proto: 'udp', sport: 41012, daddr: S6, dport: 53, expect: 'delivered', socket: 'udp6' },
      { proto: 'udp', sport: 41013, daddr: S6, dport: 54, expect: 'forwarded' },
    ],
  },
];

describe('model vs kernel: nftables scenarios (root)', () => {
  let dl: DifferentialLab;
  before(async () => {
    dl = await DifferentialLab.create();
  });
  after(() => dl.destroy());
  for (const s of NFT_SCENARIOS) {
    it(s.name, async () => {
      const reports = await dl.run(s);
      const problems = reports.flatMap((r) => r.problems.map((p) => `probe ${r.probe.proto} ${r.probe.sport} -> ${r.probe.daddr}:${r.probe.dport}: ${p}`));
      assert.deepEqual(problems, []);
    });
  }
});

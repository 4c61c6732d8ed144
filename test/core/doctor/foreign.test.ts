// Rules tproxy does not own, in a saved state: the lab router's snapshot without our table, with the
// seed's TPROXY rule in the legacy x_tables (or the nft flavour's), judged by what it does.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rulesConfigFrom, type SelectionValues } from '../../../src/cli/selection.js';
import { doctorInput } from '../../../src/core/doctor/input.js';
import { recordedListeners } from '../../../src/core/doctor/recorded.js';
import { diagnose } from '../../../src/core/doctor/report.js';
import { worldFromSnapshot, type Snapshot } from '../../../src/core/model/snapshot.js';
import { addForeignChain, fails, healthy, only } from '../../helpers/doctor.js';

const MANGLE = (rule: string): string => `*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n[3:84] -A PREROUTING ${rule}\nCOMMIT\n`;
const SEED = (port: number): string => `-p udp -m udp --dport 80 -j TPROXY --on-port ${port} --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1`;

/** The healthy router without our table; the seed's rule in `where`. */
function seeded(port: number, where: 'legacy' | 'nft'): Snapshot {
  const s = healthy() as Snapshot & { nft: { nftables: Record<string, { table?: string; name?: string }>[] }; iptablesLegacy?: unknown; iptablesCommand?: string };
  s.nft.nftables = s.nft.nftables.filter((item) => Object.values(item).every((o) => (o.table ?? o.name) !== 'tproxy_rules'));
  if (where === 'legacy') s.iptablesLegacy = { ipv4: MANGLE(SEED(port)) };
  else (s as { iptables: { ipv4?: string } }).iptables.ipv4 = MANGLE(SEED(port));
  s.iptablesCommand = 'nft';
  return s;
}

const UDP4: SelectionValues = { intercept: ['udp:80'], family: '4', rules: false };

function judge(s: Snapshot, values: SelectionValues = UDP4, rulesApply = false): ReturnType<typeof diagnose> {
  return diagnose(doctorInput(s, rulesConfigFrom(values), { apply: 'tproxy rules apply', run: 'tproxy run' }, 'direct', { rulesApply }));
}

describe('doctor: rules tproxy does not own', () => {
  it('the seed\'s legacy rule delivering to the proxy: healthy, no table of ours wanted', () => {
    const report = judge(seeded(8000, 'legacy'));
    assert.deepEqual(fails(report.findings), []);
    assert.match(only(report.findings, 'rules.table', 'pass').seen, /not tproxy's: ip mangle\[legacy\] PREROUTING/);
    assert.equal(only(report.findings, 'probe.udp.ipv4.80').severity, 'pass');
  });

  it('TPROXY rules of others in force and ours absent: judged as theirs even without --no-rules', () => {
    const report = judge(seeded(8000, 'nft'), UDP4, true);
    assert.deepEqual(fails(report.findings), []);
  });

  it('the TPROXY rule on the wrong port: the fix rewrites that rule, in its own flavour; no foreign-drop', () => {
    for (const [where, tool] of [['legacy', 'iptables-legacy'], ['nft', 'iptables']] as const) {
      const report = judge(seeded(8001, where));
      const probe = report.findings.find((f) => f.id === 'probe.udp.ipv4.80' && f.severity === 'fail');
      assert.equal(probe?.fix, `${tool} -t mangle -R PREROUTING 1 ${SEED(8000)}`);
      assert.match(probe.why, /sends it to port 8001, but the proxy listens on 8000/);
      assert.ok(!report.findings.some((f) => f.id === 'rules.foreign-drop'));
    }
  });

  it('a configured port no rule takes: the fix adds one like the user\'s', () => {
    const report = judge(seeded(8000, 'legacy'), { ...UDP4, intercept: ['udp:80', 'tcp:80'] });
    const probe = report.findings.find((f) => f.id === 'probe.tcp.ipv4.80' && f.severity === 'fail');
    assert.equal(probe?.fix, 'iptables-legacy -t mangle -A PREROUTING -p tcp --dport 80 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 8000');
  });

  it('the fwmark rule missing: `ip rule` as a user writes it, to the table that has the local route', () => {
    const s = seeded(8000, 'legacy') as Snapshot & { ipRules: { ipv4: { priority: number }[] } };
    s.ipRules.ipv4 = s.ipRules.ipv4.filter((r) => r.priority !== 9000);
    const report = judge(s);
    assert.equal(only(report.findings, 'routing.fwmark-rule.ipv4', 'fail').fix, 'ip -4 rule add fwmark 0x1/0x1 lookup 100');
    for (const f of report.findings) assert.doesNotMatch(f.fix ?? '', /tproxy rules apply/);
  });
});

describe('doctor: TPROXY rules someone wrote with nft', () => {
  const tproxyRule = (transport: string, port: number): unknown[] => [
    { match: { op: '==', left: { payload: { protocol: transport, field: 'dport' } }, right: 80 } },
    { tproxy: { family: 'ip', port } },
    { mangle: { key: { meta: { key: 'mark' } }, value: 1 } },
    { accept: null },
  ];
  function nftSeeded(port: number): Snapshot {
    const s = seeded(port, 'legacy') as Snapshot & { iptablesLegacy?: unknown };
    delete s.iptablesLegacy;
    addForeignChain(s, 'fw', 'prerouting', -150, [tproxyRule('udp', port)]);
    return s;
  }

  it('delivering: healthy, and their `meta mark set` is not a mark collision', () => {
    const report = judge(nftSeeded(8000));
    assert.deepEqual(fails(report.findings), []);
    assert.equal(only(report.findings, 'rules.mark-collision').severity, 'pass');
  });

  it('a configured port no rule takes: the fix adds an nft rule to their chain', () => {
    const report = judge(nftSeeded(8000), { ...UDP4, intercept: ['udp:80', 'tcp:443'] });
    assert.equal(report.findings.find((f) => f.id === 'probe.tcp.ipv4.443' && f.severity === 'fail')?.fix, 'nft add rule inet fw pre tcp dport 443 tproxy ip to :8000 meta mark set 0x1 accept');
  });

  it('the wrong port: named, with no fix rather than one of another family', () => {
    const probe = judge(nftSeeded(8001)).findings.find((f) => f.id === 'probe.udp.ipv4.80' && f.severity === 'fail');
    assert.match(probe?.why ?? '', /inet fw pre handle 2 sends it to port 8001, but the proxy listens on 8000/);
    assert.equal(probe?.fix, undefined);
  });
});

describe('doctor: what our table records', () => {
  it('its listeners: port, families and intercepted ports from its tproxy rules', () => {
    const listeners = recordedListeners(worldFromSnapshot(healthy()).ruleset, 'tproxy_rules', { port: 8000, addresses: {}, families: [4, 6], upstreamMark: 2 });
    assert.deepEqual(listeners, [
      { port: 8000, addresses: {}, families: [4, 6], upstreamMark: 2, name: 'main', intercept: [{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }, { transport: 'udp', ports: [{ from: 80, to: 80 }] }] },
    ]);
  });
});

// Doctor's mmproxy checks on a real snapshot of the lab router (server 203.0.113.20 behind
// to-server), changed one fault at a time: each backend's first reply followed to the listener's socket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rulesConfigFrom } from '../../../src/cli/selection.js';
import { doctorInput } from '../../../src/core/doctor/input.js';
import { diagnose } from '../../../src/core/doctor/report.js';
import type { Finding } from '../../../src/core/doctor/finding.js';
import type { MmproxyBackend, RulesConfig } from '../../../src/core/rules/config.js';
import type { Snapshot } from '../../../src/core/model/snapshot.js';
import { FLAGS, healthy, only, withoutRule } from '../../helpers/doctor.js';

const COMMANDS = { apply: 'tproxy rules apply --config tproxy.yaml', run: 'tproxy run --config tproxy.yaml' };

function config(backends: readonly MmproxyBackend[], loopback: RulesConfig['families'] = []): RulesConfig {
  return { ...rulesConfigFrom(FLAGS), mmproxy: { loopback, divert: [4, 6], transports: ['tcp'], upstreamMarks: [2], backends } };
}

function mmproxyFindings(snapshot: Snapshot, backends: readonly MmproxyBackend[], loopback: RulesConfig['families'] = []): Finding[] {
  return diagnose(doctorInput(snapshot, config(backends, loopback), COMMANDS)).findings.filter((f) => f.area === 'mmproxy');
}

const remote4: MmproxyBackend = { listener: 'web', transport: 'tcp', family: 4, address: '203.0.113.20', port: 8080, upstreamMark: 2 };
const remote6: MmproxyBackend = { listener: 'web', transport: 'tcp', family: 6, address: '2001:db8:2::20', port: 8080, upstreamMark: 2 };
const loop4: MmproxyBackend = { listener: 'lo', transport: 'tcp', family: 4, address: '127.0.0.1', port: 8080, upstreamMark: 2 };
const loop6: MmproxyBackend = { listener: 'lo', transport: 'tcp', family: 6, address: '::1', port: 8080, upstreamMark: 2 };
/** A `protocol: udp` listener's backends: its reply datagrams go to a session socket. */
const dns4: MmproxyBackend = { listener: 'dns', transport: 'udp', family: 4, address: '203.0.113.20', port: 53, upstreamMark: 2 };
const dns6: MmproxyBackend = { listener: 'dns', transport: 'udp', family: 6, address: '2001:db8:2::20', port: 53, upstreamMark: 2 };
const dnsLoop4: MmproxyBackend = { listener: 'dnslo', transport: 'udp', family: 4, address: '127.0.0.1', port: 53, upstreamMark: 2 };
const dnsLoop6: MmproxyBackend = { listener: 'dnslo', transport: 'udp', family: 6, address: '::1', port: 53, upstreamMark: 2 };

type Json = Record<string, unknown>;
function addLoopbackRules(s: Snapshot, table = '100'): void {
  const rules = s.ipRules as unknown as Record<'ipv4' | 'ipv6', Json[]>;
  rules.ipv4.splice(1, 0, { priority: 9000, src: '127.0.0.0', srclen: 8, iif: 'lo', table });
  rules.ipv6.splice(1, 0, { priority: 9000, src: '::1', iif: 'lo', table });
}

/** Add UDP sockets (`ss` lines: ADDR:PORT, the process, v6only) to the snapshot's socket table. */
function addUdpSockets(s: Snapshot, sockets: readonly { at: string; process: string; v6only?: boolean }[]): void {
  const lines = sockets.map((k, i) => `udp UNCONN 0      0      ${k.at} ${k.at.startsWith('[') ? '[::]:*' : '0.0.0.0:*'} users:(("${k.process}",pid=${300 + i},fd=4)) ino:${900 + i} sk:${900 + i} cgroup:unreachable:1${k.v6only ? ' v6only:1' : ''} <-> inet-sockopt: ( mc_loop)`);
  (s as unknown as { sockets: string }).sockets += `${lines.join('\n')}\n`;
}

describe('doctor: mmproxy reply routing', () => {
  it('says nothing without mmproxy listeners', () => {
    assert.deepEqual(diagnose(doctorInput(healthy(), rulesConfigFrom(FLAGS), COMMANDS)).findings.filter((f) => f.area === 'mmproxy'), []);
  });

  it('a backend on another host: its reply is diverted, made local and reaches the listener\'s socket (IPv4 and IPv6)', () => {
    const found = mmproxyFindings(healthy(), [remote4, remote6]);
    const v4 = only(found, 'mmproxy.reply.web.ipv4', 'pass');
    assert.match(v4.seen, /backend 203\.0\.113\.20:8080 on another host \(via to-server\): its reply to 198\.51\.100\.123:40000 reaches tcp established 198\.51\.100\.123:40000 peer 203\.0\.113\.20:8080 transparent/);
    only(found, 'mmproxy.reply.web.ipv6', 'pass');
    assert.equal(found.filter((f) => f.severity !== 'pass').length, 0, JSON.stringify(found));
  });

  it('a backend on another host without the TCP divert rule: its reply goes to the client directly, named with the fix', () => {
    const s = healthy();
    withoutRule(s, 'tproxy: divert tcp ipv4');
    const f = only(mmproxyFindings(s, [remote4]), 'mmproxy.reply.web.ipv4', 'fail');
    assert.match(f.why, /nothing marks the backend's reply \(the TCP divert rule, `socket transparent`, is missing\)/);
    assert.equal(f.fix, COMMANDS.apply);
    assert.ok(f.trace && f.trace.length > 0);
  });

  it('a backend on another host with src_valid_mark and no accept_local: the reverse-path check drops its replies', () => {
    const s = healthy();
    const sysctls = s.sysctls as Record<string, string>;
    sysctls['net.ipv4.conf.all.src_valid_mark'] = '1';
    const f = only(mmproxyFindings(s, [remote4]), 'mmproxy.rp_filter.web.ipv4', 'fail');
    assert.match(f.seen, /answers through to-server/);
    assert.equal(f.fix, 'sysctl -w net.ipv4.conf.to-server.accept_local=1');
  });

  it('a backend on loopback without the loopback rule: named, with the ip rule to add (IPv4 and IPv6)', () => {
    const found = mmproxyFindings(healthy(), [loop4, loop6], [4, 6]);
    const rule4 = only(found, 'mmproxy.loopback-rule.ipv4', 'fail');
    assert.equal(rule4.fix, 'ip -4 rule add from 127.0.0.0/8 iif lo lookup 100 priority 9000');
    assert.equal(only(found, 'mmproxy.loopback-rule.ipv6', 'fail').fix, 'ip -6 rule add from ::1/128 iif lo lookup 100 priority 9000');
    const reply = only(found, 'mmproxy.reply.lo.ipv4', 'fail');
    assert.match(reply.seen, /backend 127\.0\.0\.1:8080 on loopback: its reply to 198\.51\.100\.123:40000 does not reach the listener's socket/);
    assert.equal(reply.fix, rule4.fix);
  });

  it('a backend on loopback with the rule in place: pass, and no sysctl needed', () => {
    const s = healthy();
    addLoopbackRules(s);
    const found = mmproxyFindings(s, [loop4, loop6], [4, 6]);
    only(found, 'mmproxy.reply.lo.ipv4', 'pass');
    only(found, 'mmproxy.reply.lo.ipv6', 'pass');
    assert.equal(found.filter((f) => f.severity !== 'pass').length, 0, JSON.stringify(found));
  });

  it('the loopback rule to a table without a local route: the route is the fault', () => {
    const s = healthy();
    addLoopbackRules(s, '123');
    const f = only(mmproxyFindings(s, [loop4]), 'mmproxy.local-route.ipv4', 'fail');
    assert.equal(f.fix, 'ip -4 route add local default dev lo table 123');
  });

  it('the header\'s destination: checked with a loopback backend; the planned loopback rule is checked without any backend on loopback', () => {
    const found = mmproxyFindings(healthy(), [{ listener: 'any', transport: 'tcp', family: 4, upstreamMark: 2 }], [4]);
    assert.match(only(found, 'mmproxy.reply.any.ipv4', 'fail').seen, /the header's destination \(checked as 127\.0\.0\.1:80\)/);
    const planned = mmproxyFindings(healthy(), [remote4], [4]);
    only(planned, 'mmproxy.loopback-rule.ipv4', 'fail');
  });

  it('a backend on an address of this host that is not loopback: its replies would leave the host', () => {
    const f = only(mmproxyFindings(healthy(), [{ ...remote4, address: '203.0.113.1' }]), 'mmproxy.backend.web.ipv4', 'fail');
    assert.match(f.seen, /203\.0\.113\.1:8080 is an address of this host but not loopback/);
    assert.equal(f.fix, undefined);
  });

  it('udp: a backend on another host: its reply datagram is diverted by the UDP divert rule and reaches the session socket (IPv4 and IPv6)', () => {
    const found = mmproxyFindings(healthy(), [dns4, dns6]);
    const v4 = only(found, 'mmproxy.reply.dns.ipv4', 'pass');
    assert.match(v4.seen, /backend 203\.0\.113\.20:53 on another host \(via to-server\): its reply datagram to 198\.51\.100\.123:40000 reaches udp established 198\.51\.100\.123:40000 peer 203\.0\.113\.20:53 transparent/);
    assert.match(v4.why, /session socket/);
    only(found, 'mmproxy.reply.dns.ipv6', 'pass');
    assert.equal(found.filter((f) => f.severity !== 'pass').length, 0, JSON.stringify(found));
  });

  it('udp: without the UDP divert rule the reply datagram goes to the client directly; the TCP divert rule does not stand in for it', () => {
    const s = healthy();
    withoutRule(s, 'tproxy: divert udp ipv4');
    const found = mmproxyFindings(s, [dns4, remote4]);
    const f = only(found, 'mmproxy.reply.dns.ipv4', 'fail');
    assert.match(f.why, /the UDP divert rule, `socket transparent`, is missing/);
    assert.equal(f.fix, COMMANDS.apply);
    assert.ok(f.trace?.some((line) => /forward|to-client/.test(line)), f.trace?.join('\n'));
    only(found, 'mmproxy.reply.web.ipv4', 'pass');
  });

  it('udp: a backend on loopback needs the loopback rule like TCP\'s, and passes with it', () => {
    const none = mmproxyFindings(healthy(), [dnsLoop4, dnsLoop6], [4, 6]);
    assert.match(only(none, 'mmproxy.reply.dnslo.ipv4', 'fail').seen, /its reply datagram to 198\.51\.100\.123:40000 does not reach the listener's socket/);
    only(none, 'mmproxy.loopback-rule.ipv4', 'fail');
    const s = healthy();
    addLoopbackRules(s);
    const found = mmproxyFindings(s, [dnsLoop4, dnsLoop6], [4, 6]);
    assert.match(only(found, 'mmproxy.reply.dnslo.ipv6', 'pass').seen, /reaches udp established \[2001:db8:ffff::123\]:40000 peer \[::1\]:53 transparent/);
    only(found, 'mmproxy.reply.dnslo.ipv4', 'pass');
  });

  it('udp: a loopback backend bound to the wildcard address is warned about, with what to bind instead (IPv4 and IPv6)', () => {
    const s = healthy();
    addLoopbackRules(s);
    addUdpSockets(s, [{ at: '0.0.0.0:53', process: 'dnsd' }, { at: '[::]:53', process: 'dnsd', v6only: true }]);
    const found = mmproxyFindings(s, [dnsLoop4, dnsLoop6], [4, 6]);
    const v4 = only(found, 'mmproxy.backend-bind.dnslo.ipv4', 'warn');
    assert.match(v4.seen, /mmproxy dnslo, IPv4 backend 127\.0\.0\.1:53: its datagrams reach udp unconnected 0\.0\.0\.0:53 \(dnsd\[300\]\), bound to the wildcard address/);
    assert.match(v4.why, /answers from the address the route lookup picks .* not 127\.0\.0\.1\), so the loopback rule \(from 127\.0\.0\.0\/8 iif lo\) does not match its replies.*Bind the backend to 127\.0\.0\.1:53/);
    assert.equal(v4.fix, undefined, 'binding the backend is the operator\'s change, not a command of ours');
    assert.match(only(found, 'mmproxy.backend-bind.dnslo.ipv6', 'warn').why, /not ::1\).*Bind the backend to \[::1\]:53/);
    // The routing itself is fine: the replies' path passes, the warning is about their source.
    only(found, 'mmproxy.reply.dnslo.ipv4', 'pass');
  });

  it('udp: no warning when the backend binds loopback (also beside a wildcard socket, which then gets nothing), for a TCP backend, or with nothing bound', () => {
    const s = healthy();
    addLoopbackRules(s);
    addUdpSockets(s, [{ at: '127.0.0.1:53', process: 'dnsd' }, { at: '0.0.0.0:53', process: 'other' }, { at: '[::1]:53', process: 'dnsd' }, { at: '0.0.0.0:8080', process: 'web' }]);
    const found = mmproxyFindings(s, [dnsLoop4, dnsLoop6, loop4], [4, 6]);
    assert.deepEqual(found.filter((f) => f.id.startsWith('mmproxy.backend-bind.')), []);
    assert.deepEqual(mmproxyFindings(healthy(), [dnsLoop4], [4]).filter((f) => f.id.startsWith('mmproxy.backend-bind.')), []);
  });

  it('udp: an IPv6 wildcard socket that also takes IPv4 (not v6only) is the IPv4 backend\'s socket too', () => {
    const s = healthy();
    addUdpSockets(s, [{ at: '[::]:53', process: 'dnsd' }]);
    const found = mmproxyFindings(s, [dnsLoop4, dns4], [4]);
    assert.match(only(found, 'mmproxy.backend-bind.dnslo.ipv4', 'warn').seen, /udp unconnected \[::\]:53 \(dnsd\[300\]\)/);
    // A backend on another host is not checked: its socket is on that host.
    assert.equal(found.filter((f) => f.id === 'mmproxy.backend-bind.dns.ipv4').length, 0);
  });

  it('a backend without a route from the client\'s address', () => {
    const f = only(mmproxyFindings(healthy(), [{ ...remote6, address: '2001:db8:99::1' }]), 'mmproxy.backend.web.ipv6', 'fail');
    assert.match(f.seen, /no route from a client's address/);
  });
});

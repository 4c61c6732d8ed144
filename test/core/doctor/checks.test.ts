import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkKernel } from '../../../src/core/doctor/kernel.js';
import { checkPrivileges, hasCapability } from '../../../src/core/doctor/privileges.js';
import { checkRouting } from '../../../src/core/doctor/routing.js';
import { checkSockets } from '../../../src/core/doctor/sockets.js';
import { checkSysctls } from '../../../src/core/doctor/sysctls.js';
import type { Snapshot } from '../../../src/core/model/snapshot.js';
import { FLAGS, PROXY_PID, fails, healthy, input, only, report } from '../../helpers/doctor.js';

type Mutable<T> = { -readonly [K in keyof T]: Mutable<T[K]> };
const edit = (change: (s: Mutable<Snapshot>) => void): Snapshot => {
  const s = healthy() as Mutable<Snapshot>;
  change(s);
  return s;
};
const rules4 = (s: Mutable<Snapshot>): Record<string, unknown>[] => s.ipRules.ipv4 as Record<string, unknown>[];
const routes4 = (s: Mutable<Snapshot>): Record<string, unknown>[] => s.routes.ipv4 as Record<string, unknown>[];

describe('doctor on a healthy router', () => {
  it('finds no failure and no warning: every probe reaches the proxy', () => {
    const r = report(healthy());
    assert.equal(r.status, 0);
    assert.deepEqual(r.findings.filter((f) => f.severity !== 'pass').map((f) => [f.id, f.seen]), []);
    assert.equal(r.findings.filter((f) => f.id.startsWith('probe.') && f.severity === 'pass').length, 8, 'tcp and udp, IPv4 and IPv6, from both interfaces');
  });
});

describe('doctor: kernel support', () => {
  it('fails a feature nft --check refused, with the module to load', () => {
    const f = checkKernel(input(edit((s) => void (s.host!.probes!['nft.socket'] = { ok: false, detail: 'Error: Could not process rule: No such file or directory' }))));
    const socket = only(f, 'kernel.nft.socket', 'fail');
    assert.match(socket.seen, /No such file or directory/);
    assert.equal(socket.fix, 'modprobe nft_socket');
    assert.equal(only(f, 'kernel.nft.tproxy.ipv4').severity, 'pass');
  });

  it('probes only the families configured; a kernel without IPv6 policy routing fails', () => {
    const f = checkKernel(input(edit((s) => void (s.ipRules.ipv6 = [])), { ...FLAGS, family: '4' }));
    assert.ok(!f.some((x) => x.id === 'kernel.nft.tproxy.ipv6'));
    const g = checkKernel(input(edit((s) => void (s.ipRules.ipv6 = []))));
    assert.equal(only(g, 'kernel.policy-routing.ipv6').severity, 'fail');
  });

  it('on an iptables-only host reads the loaded xtables extensions', () => {
    const f = checkKernel(input(edit((s) => {
      (s as { nft: unknown }).nft = null;
      s.iptables.ipv4 = '*mangle\nCOMMIT\n';
      s.host!.xtables = { targets4: 'MARK\nTOS', matches4: 'socket\nmark' };
    })));
    assert.equal(only(f, 'kernel.xt.tproxy').severity, 'warn');
    assert.equal(only(f, 'kernel.xt.tproxy').fix, 'modprobe xt_TPROXY');
    assert.equal(only(f, 'kernel.xt.socket').severity, 'pass');
  });

  it('says whether the uring engine can run, and why not (a seccomp profile refusing io_uring)', () => {
    assert.ok(!checkKernel(input(healthy())).some((x) => x.id === 'kernel.io_uring'), 'a snapshot without the fact says nothing');
    const ok = checkKernel(input(edit((s) => void (s.host!.ioUring = { available: true, why: 'io_uring is available (kernel 6.18.0)' }))));
    assert.equal(only(ok, 'kernel.io_uring').severity, 'pass');
    const refused = checkKernel(input(edit((s) => void (s.host!.ioUring = { available: false, why: 'io_uring_setup failed with EPERM: a seccomp profile refuses io_uring' }))));
    const f = only(refused, 'kernel.io_uring', 'warn');
    assert.match(f.seen, /EPERM/);
    assert.match(f.why, /falls back to the splice engine/);
  });
});

describe('doctor: privileges', () => {
  it('reads capability bits', () => {
    assert.equal(hasCapability('0000000000001000', 12), true);
    assert.equal(hasCapability('0000000000002000', 12), false);
    assert.equal(hasCapability('zz', 12), false);
  });

  it('fails a proxy process without CAP_NET_ADMIN, warns without CAP_NET_RAW when UDP is intercepted', () => {
    const none = checkPrivileges(input(edit((s) => void (s.host!.processes![PROXY_PID] = { capEff: '0000000000000000' }))));
    assert.match(only(none, 'privileges.proxy', 'fail').seen, /node\[2122\] has no CAP_NET_ADMIN/);
    const noRaw = checkPrivileges(input(edit((s) => void (s.host!.processes![PROXY_PID] = { capEff: '0000000000001000' }))));
    assert.equal(only(noRaw, 'privileges.proxy').severity, 'warn');
    const tcpOnly = checkPrivileges(input(edit((s) => void (s.host!.processes![PROXY_PID] = { capEff: '0000000000001000' })), { intercept: ['tcp:80'] }));
    assert.equal(only(tcpOnly, 'privileges.proxy').severity, 'pass');
  });

  it('warns when doctor itself could not read everything', () => {
    const f = checkPrivileges(input(edit((s) => void (s.host!.self = { uid: 1000, capEff: '0000000000000000' }))));
    assert.equal(only(f, 'privileges.inspect').severity, 'warn');
  });
});

describe('doctor: sysctls', () => {
  it('src_valid_mark makes the reverse route of marked packets local: fails, fixed by accept_local', () => {
    const f = checkSysctls(input(edit((s) => void (s.sysctls['net.ipv4.conf.all.src_valid_mark'] = '1'))));
    const svm = f.filter((x) => x.id === 'sysctl.src_valid_mark');
    assert.equal(svm.length, 2, 'both interfaces');
    assert.equal(svm[0]!.fix, 'sysctl -w net.ipv4.conf.to-client.accept_local=1');
    assert.match(svm[0]!.seen, /is local \(local default dev lo table 100\)/);
  });

  it('the probes fail too: the reverse-path check runs in routing, before delivery', () => {
    const r = report(edit((s) => void (s.sysctls['net.ipv4.conf.all.src_valid_mark'] = '1')));
    assert.match(only(r.findings, 'probe.tcp.ipv4.80', 'fail').seen, /DROPPED in routing by the reverse-path check \(EINVAL\)/);
    assert.equal(only(r.findings, 'probe.tcp.ipv6.80').severity, 'pass', 'IPv6 has no rp_filter');
  });

  it('rp_filter is the larger of all and the interface: strict with a reverse route through lo fails, loose passes', () => {
    const strict = checkSysctls(input(edit((s) => {
      Object.assign(s.sysctls, { 'net.ipv4.conf.all.src_valid_mark': '1', 'net.ipv4.conf.all.accept_local': '1', 'net.ipv4.conf.all.rp_filter': '1', 'net.ipv4.conf.to-client.rp_filter': '0' });
    })));
    const rp = only(strict, 'sysctl.rp_filter', 'fail');
    assert.match(rp.seen, /to-client: rp_filter 1 \(all 1, to-client 0\)/);
    assert.equal(rp.fix, 'sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.to-client.rp_filter=2');
    const loose = checkSysctls(input(edit((s) => {
      Object.assign(s.sysctls, { 'net.ipv4.conf.all.src_valid_mark': '1', 'net.ipv4.conf.all.accept_local': '1', 'net.ipv4.conf.all.rp_filter': '2' });
    })));
    assert.deepEqual(fails(loose), []);
  });

  it('strict rp_filter and an asymmetric route back to the clients fails; without src_valid_mark the mark is not used', () => {
    const asym = edit((s) => {
      routes4(s).push({ dst: '198.51.100.0/25', gateway: '203.0.113.20', dev: 'to-server', flags: [] });
      s.sysctls['net.ipv4.conf.to-client.rp_filter'] = '1';
    });
    const rp = only(checkSysctls(input(asym)), 'sysctl.rp_filter', 'fail');
    assert.match(rp.seen, /not through to-client/);
    assert.deepEqual(fails(checkSysctls(input(edit((s) => void (s.sysctls['net.ipv4.conf.to-client.rp_filter'] = '1'))))), []);
  });

  it('warns about forwarding off and bridge calls with br_netfilter; route_localnet for a loopback listener', () => {
    const f = checkSysctls(input(edit((s) => Object.assign(s.sysctls, { 'net.ipv4.ip_forward': '0', 'net.bridge.bridge-nf-call-iptables': '1', 'net.bridge.bridge-nf-call-ip6tables': '0' }))));
    assert.equal(only(f, 'sysctl.ip_forward').severity, 'warn');
    assert.equal(only(f, 'sysctl.bridge-nf-call').fix, 'sysctl -w net.bridge.bridge-nf-call-iptables=0');
    assert.ok(!checkSysctls(input(healthy())).some((x) => x.id === 'sysctl.bridge-nf-call'), 'only when br_netfilter is loaded');
    const local = checkSysctls(input(healthy(), { ...FLAGS, 'listen-address': ['127.0.0.1'] }));
    assert.equal(only(local, 'sysctl.route_localnet').severity, 'fail');
  });
});

describe('doctor: policy routing', () => {
  it('a missing fwmark rule fails with the command that adds it', () => {
    const f = checkRouting(input(edit((s) => void (s.ipRules.ipv4 = rules4(s).filter((r) => r.fwmark === undefined)))));
    assert.equal(only(f, 'routing.fwmark-rule.ipv4', 'fail').fix, 'ip -4 rule add fwmark 0x1/0x1 lookup 100 priority 9000');
    assert.equal(only(f, 'routing.fwmark-rule.ipv6').severity, 'pass');
  });

  it('a table without the local default route fails', () => {
    const f = checkRouting(input(edit((s) => void (s.routes.ipv4 = routes4(s).filter((r) => r.table !== '100')))));
    assert.equal(only(f, 'routing.local-route.ipv4', 'fail').fix, 'ip -4 route add local default dev lo table 100');
  });

  it('WireGuard (wg-quick): suppress_prefixlength and not-fwmark rules before ours shadow it, found with the model', () => {
    const f = checkRouting(input(edit((s) => {
      rules4(s).push({ priority: 5000, src: 'all', table: 'main', suppress_prefixlen: 0 }, { priority: 5001, not: null, src: 'all', fwmark: '0xca6c', table: '51820' });
      routes4(s).push({ dst: 'default', dev: 'wg0', table: '51820', flags: [] });
    })));
    const shadow = only(f, 'routing.shadowed.ipv4', 'fail');
    assert.match(shadow.seen, /5000: from all lookup main suppress_prefixlength 0 decides before 9000/);
    assert.equal(shadow.fix, 'ip -4 rule add fwmark 0x1/0x1 lookup 100 priority 4999');
    assert.ok(shadow.trace?.some((t) => /5000/.test(t)));
  });

  it('a rule before ours that catches marked packets to another table is shadowing only when that table routes them away', () => {
    const f = checkRouting(input(edit((s) => {
      rules4(s).push({ priority: 100, src: 'all', iif: 'to-client', table: '200' });
      routes4(s).push({ type: 'local', dst: 'default', dev: 'lo', table: '200', flags: [] });
    })));
    assert.equal(only(f, 'routing.shadowed.ipv4').severity, 'pass');
  });
});

describe('doctor: the record of our table', () => {
  it('its fwmark, route table and priority win over the options given', () => {
    const r = report(healthy(), { ...FLAGS, fwmark: '0x8', 'fwmark-mask': '0x8' });
    assert.equal(only(r.findings, 'routing.fwmark-rule.ipv4').severity, 'pass');
    assert.deepEqual(fails(r.findings), []);
  });
});

describe('doctor: sockets', () => {
  const sockets = (change: (text: string) => string): Snapshot => edit((s) => void (s.sockets = change(s.sockets)));

  it('no listener on the redirect port fails with the command that starts the proxy', () => {
    const f = checkSockets(input(sockets((t) => t.split('\n').filter((l) => !l.startsWith('tcp')).join('\n'))));
    assert.equal(only(f, 'sockets.listener.tcp.ipv4', 'fail').fix, 'tproxy run --intercept tcp:80 --intercept udp:80');
    assert.equal(only(f, 'sockets.listener.udp.ipv4').severity, 'pass');
  });

  it('a listener without IP_TRANSPARENT fails with the command that stops its process', () => {
    const f = checkSockets(input(sockets((t) => t.replace(/ transparent/g, ''))));
    assert.equal(only(f, 'sockets.transparent.tcp.ipv6', 'fail').fix, `kill ${PROXY_PID}`);
  });

  it('still checks the listener when no interface has a subnet to probe from (and says nothing was probed)', () => {
    const r = report(healthy(), { ...FLAGS, iface: ['wg0'] });
    assert.equal(only(r.findings, 'sockets.listener.tcp.ipv4').severity, 'pass');
    assert.equal(only(r.findings, 'probe.sites.ipv4').severity, 'warn');
  });

  it('a local service on an intercepted UDP port warns (the reply sockets collide with it)', () => {
    const f = checkSockets(input(sockets((t) => `${t}udp UNCONN 0 0 0.0.0.0:80 0.0.0.0:* users:(("dnsd",pid=77,fd=3)) <-> inet-sockopt: ( mc_loop)\n`)));
    assert.match(only(f, 'sockets.udp-reply-port', 'warn').seen, /udp unconnected 0\.0\.0\.0:80 \(dnsd\[77\]\) is bound to intercepted UDP port 80 on every address/);
  });
});

describe('doctor: exit status', () => {
  it('2 when an essential source could not be read', () => {
    const r = report(edit((s) => {
      (s as { nft: unknown }).nft = null;
      s.errors = { nft: '`nft -j list ruleset` exited with 1: Operation not permitted' };
    }));
    assert.equal(r.status, 2);
    assert.deepEqual(Object.keys(r.uninspected), ['nft']);
  });
});

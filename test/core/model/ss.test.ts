import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIp } from '../../../src/core/net/address.js';
import { parseSsAddress, parseSsSockets } from '../../../src/core/model/ss.js';

// Real `ss -H -O -tuanpe --inet-sockopt` lines (iproute2 6.1, Linux 6.18).
const SS = `udp ESTAB      0      0      127.0.0.1:53    127.0.0.2:99    users:(("python3",pid=22266,fd=5)) ino:375252 sk:100f cgroup:unreachable:1 <-> inet-sockopt: ( mc_loop transparent mc_all)
tcp LISTEN     0      128      0.0.0.0:8000    0.0.0.0:*     users:(("python3",pid=22266,fd=3)) ino:375250 sk:1010 cgroup:unreachable:1 <-> inet-sockopt: ( is_icsk mc_loop transparent mc_all)
tcp CLOSE-WAIT 1      0      127.0.0.1:56990 127.0.0.1:8000  users:(("python3",pid=22266,fd=8)) ino:375300 sk:1011 cgroup:unreachable:1 --> inet-sockopt: ( is_icsk mc_loop mc_all)
tcp FIN-WAIT-2 0      0      127.0.0.1:8000  127.0.0.1:56990 timer:(timewait,59sec,0) ino:0 sk:1012
tcp LISTEN     0      128            *:8001          *:*     users:(("python3",pid=22266,fd=4)) ino:375251 sk:1013 cgroup:unreachable:1 v6only:0 <-> inet-sockopt: ( is_icsk mc_loop transparent)
tcp ESTAB      0      0          [::1]:8001      [::1]:53254 users:(("python3",pid=22266,fd=7)) ino:375299 sk:1014 cgroup:unreachable:1 <-> inet-sockopt: ( is_icsk mc_loop transparent)
udp UNCONN     0      0      0.0.0.0%eth0:68    0.0.0.0:*    ino:1 sk:1 fwmark:0x2 <->
Failed to find cgroup2 mount`;

describe('ss sockets', () => {
  const sockets = parseSsSockets(SS);
  it('reads every socket line and nothing else', () => assert.equal(sockets.length, 7));
  it('reads IP_TRANSPARENT from inet-sockopt', () => {
    assert.deepEqual(sockets.map((s) => s.transparent), [true, true, false, false, true, true, false]);
  });
  it('reads states, peers, v6only, process, bound device and mark', () => {
    const [udp, listen, , tw, dual, , bound] = sockets;
    assert.equal(udp!.state, 'established');
    assert.equal(udp!.remote?.port, 99);
    assert.equal(listen!.state, 'listen');
    assert.equal(listen!.remote, undefined);
    assert.equal(listen!.process, 'python3[22266]');
    assert.equal(tw!.state, 'time-wait');
    assert.equal(tw!.transparentSource, 'inferred');
    assert.equal(dual!.family, 6);
    assert.equal(dual!.v6only, false);
    assert.equal(formatIp(dual!.local.addr), '::');
    assert.equal(bound!.state, 'unconnected');
    assert.equal(bound!.boundDev, 'eth0');
    assert.equal(bound!.mark, 2);
  });
  it('parses addresses with brackets, wildcards and devices', () => {
    assert.equal(parseSsAddress('[2001:db8::1]:80')?.port, 80);
    assert.equal(parseSsAddress('*:*')?.wildcardPort, true);
    assert.equal(parseSsAddress('nonsense'), undefined);
  });
});

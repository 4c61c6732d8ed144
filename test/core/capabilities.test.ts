import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkRunPrivileges, parseCapabilities, relevantCapabilities } from '../../src/core/capabilities.js';

const STATUS = 'Name:\tnode\nUid:\t65534\t65534\t65534\t65534\nCapInh:\t0000000000001000\nCapPrm:\t0000000000001400\nCapEff:\t0000000000001400\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000001000\n';

describe('capabilities', () => {
  it('reads the effective and ambient sets of /proc/PID/status', () => {
    const caps = parseCapabilities(STATUS);
    assert.deepEqual(relevantCapabilities(caps.effective), ['net_bind_service', 'net_admin']);
    assert.deepEqual(relevantCapabilities(caps.ambient), ['net_admin']);
    assert.deepEqual(parseCapabilities('Name:\tx\n'), { effective: 0n, ambient: 0n });
  });

  it('names CAP_SYS_RESOURCE (bit 24: the systemd unit\'s third capability, for the pipes) among those it reports', () => {
    // CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_SYS_RESOURCE, and CAP_SYS_ADMIN (21), which it does not report.
    const { effective, ambient } = parseCapabilities('CapEff:\t0000000001201400\nCapAmb:\t0000000001000000\n');
    assert.deepEqual(relevantCapabilities(effective), ['net_bind_service', 'net_admin', 'sys_resource']);
    assert.deepEqual(relevantCapabilities(ambient), ['sys_resource']);
  });

  it('accepts root, and a user with CAP_NET_ADMIN effective and ambient', () => {
    checkRunPrivileges({ uid: 0, effective: 0x1fffffffffn, ambient: 0n }, true);
    checkRunPrivileges({ uid: 65534, effective: 1n << 12n, ambient: 1n << 12n }, true);
    checkRunPrivileges({ uid: 65534, effective: 1n << 12n, ambient: 0n }, false);
  });

  it('refuses without CAP_NET_ADMIN, and when nft and ip would not inherit it', () => {
    assert.throws(() => checkRunPrivileges({ uid: 65534, effective: 0n, ambient: 0n }, false), {
      code: 'ERR_PRIVILEGE',
      message: 'tproxy run needs CAP_NET_ADMIN (transparent sockets, packet marks, kernel rules): run as root, or grant it: systemd AmbientCapabilities=CAP_NET_ADMIN (see packaging/tproxy.service), or setpriv --inh-caps +net_admin --ambient-caps +net_admin',
    });
    assert.throws(() => checkRunPrivileges({ uid: 65534, effective: 1n << 12n, ambient: 0n }, true), /CAP_NET_ADMIN is effective but not ambient, so nft and ip \(child processes\) would run without it/);
  });

  it('asks for CAP_NET_BIND_SERVICE for a low listen port and for UDP to low ports (reply sockets bind them)', () => {
    const adminOnly = { uid: 65534, effective: 1n << 12n, ambient: 1n << 12n };
    const needs = { listenPort: 8000, udpPorts: [{ from: 53, to: 53 }, { from: 5000, to: 5001 }], unprivilegedPortStart: 1024 };
    assert.throws(() => checkRunPrivileges(adminOnly, true, needs), {
      code: 'ERR_PRIVILEGE',
      message: "intercepting udp:53 needs CAP_NET_BIND_SERVICE: each UDP session's reply socket binds the original destination's port, which is below 1024: grant it too: systemd AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE, or setpriv --inh-caps +net_admin,+net_bind_service --ambient-caps +net_admin,+net_bind_service",
    });
    assert.throws(() => checkRunPrivileges(adminOnly, true, { ...needs, listenPort: 800, udpPorts: [] }), /^TproxyError: listen port 800 is below 1024 \(net\.ipv4\.ip_unprivileged_port_start\): binding it needs CAP_NET_BIND_SERVICE/);
    checkRunPrivileges(adminOnly, true, { ...needs, unprivilegedPortStart: 0 });
    checkRunPrivileges(adminOnly, true, { ...needs, udpPorts: [{ from: 1024, to: 2000 }] });
    checkRunPrivileges({ ...adminOnly, effective: (1n << 12n) | (1n << 10n) }, true, needs);
  });
});

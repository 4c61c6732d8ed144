import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTproxyError } from '../../../src/core/errors.js';
import { checkSnapshot, SNAPSHOT_FORMAT, worldFromSnapshot, type Snapshot } from '../../../src/core/model/snapshot.js';

const base: Snapshot = {
  format: SNAPSHOT_FORMAT,
  version: 1,
  takenAt: '2026-01-01T00:00:00.000Z',
  nft: {
    nftables: [
      { table: { family: 'ip', name: 'mangle' } },
      { chain: { family: 'ip', table: 'mangle', name: 'PREROUTING', type: 'filter', hook: 'prerouting', prio: -150, policy: 'accept' } },
      { rule: { family: 'ip', table: 'mangle', chain: 'PREROUTING', handle: 3, expr: [{ xt: { type: 'target', name: 'TPROXY' } }] } },
      { table: { family: 'inet', name: 'tproxy' } },
    ],
  },
  iptables: { ipv4: '*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j TPROXY --on-port 8000 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1\nCOMMIT\n', ipv6: '*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n' },
  ipRules: { ipv4: [{ priority: 0, src: 'all', table: 'local' }], ipv6: [] },
  routes: { ipv4: [{ type: 'local', dst: '198.51.100.1', dev: 'eth0', table: 'local' }], ipv6: [] },
  addresses: [{ ifname: 'eth0', addr_info: [{ family: 'inet', local: '198.51.100.1', prefixlen: 24 }] }],
  sockets: 'tcp TIME-WAIT 0 0 203.0.113.20:80 198.51.100.10:40000 timer:(timewait,50sec,0) ino:0 sk:1\ntcp TIME-WAIT 0 0 198.51.100.1:22 198.51.100.10:40001 timer:(timewait,50sec,0) ino:0 sk:2\n',
  sysctls: { 'net.ipv4.ip_forward': '1' },
  errors: {},
};

describe('worldFromSnapshot', () => {
  const world = worldFromSnapshot(base);

  it('replaces iptables-nft tables (xt expressions) with the iptables-save reading; drops empty ones', () => {
    assert.deepEqual(world.ruleset.tables.map((t) => `${t.family} ${t.name} ${t.origin}`), ['inet tproxy nft', 'ip mangle iptables']);
  });

  it('infers TIME_WAIT transparency from whether the address is ours', () => {
    assert.deepEqual(world.sockets.map((s) => s.transparent), [true, false]);
  });

  it('reads interfaces, routing and sysctls', () => {
    assert.equal(world.interfaces[0]?.name, 'eth0');
    assert.equal(world.routing.rules.length, 1);
    assert.equal(world.sysctls['net.ipv4.ip_forward'], '1');
  });

  it('refuses what is not a snapshot, saying how to make one', () => {
    assert.throws(() => checkSnapshot({ nftables: [] }), (e) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && /tproxy snapshot > state\.json/.test(e.message));
    assert.equal(checkSnapshot(base), base);
  });
});

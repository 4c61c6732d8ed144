// `tproxy explain --mmproxy NAME CLIENT` on a saved state of the lab router: the backend's reply
// followed to the listener's connection, and the rule and route that bring it there.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli } from '../helpers/cli.js';
import { healthy } from '../helpers/doctor.js';

describe('tproxy explain --mmproxy', () => {
  let dir: string;
  let without: string;
  let withRule: string;
  let config: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-explain-mmproxy-'));
    without = join(dir, 'without.json');
    writeFileSync(without, JSON.stringify(healthy()));
    const s = healthy();
    const rules = s.ipRules as unknown as Record<'ipv4' | 'ipv6', Record<string, unknown>[]>;
    // After the fwmark rule at the same priority, as `ip rule` lists them once tproxy added both.
    rules.ipv4.splice(2, 0, { priority: 9000, src: '127.0.0.0', srclen: 8, iif: 'lo', table: '100' });
    rules.ipv6.splice(2, 0, { priority: 9000, src: '::1', iif: 'lo', table: '100' });
    withRule = join(dir, 'with.json');
    writeFileSync(withRule, JSON.stringify(s));
    config = join(dir, 'tproxy.yaml');
    writeFileSync(
      config,
      ['listeners: [{port: 8000, intercept: ["tcp:80"]}]', 'mmproxy:', '  - name: remote', '    backend4: 203.0.113.20:8080', '  - name: local', '    listen: [127.0.0.1:8444]', '    backend4: 127.0.0.1:8080', '    backend6: "[::1]:8080"', '  - name: dns', '    protocol: udp', '    listen: [0.0.0.0:5353]', '    backend4: 203.0.113.20:53', '    backend6: "[::1]:53"'].join('\n') + '\n',
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a backend on another host: brought back by the divert rule\'s mark and the fwmark rule', async () => {
    const r = await cli('explain', '--snapshot', without, '--config', config, '--mmproxy', 'remote', '198.51.100.10:40000');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^mmproxy reply: backend 203\.0\.113\.20:8080 on another host \(via to-server\): its reply to 198\.51\.100\.10:40000 reaches tcp established 198\.51\.100\.10:40000 peer 203\.0\.113\.20:8080 transparent/m);
    assert.match(r.out, /no such flow now: assumed/);
    assert.match(r.out, /^brought back by: ip rule 9000: from all fwmark 0x1\/0x1 lookup 100 -> local default dev lo table 100, arriving on to-server with mark 0x1 \(set by the divert rule/m);
    assert.match(r.out, /^packet: tcp 203\.0\.113\.20:8080 -> 198\.51\.100\.10:40000/m);
    assert.match(r.out, /\+ .*divert tcp ipv4/);
  });

  it('a backend on loopback: not brought back without the loopback rule, brought back with it (IPv4 and IPv6, JSON)', async () => {
    const no = await cli('explain', '--snapshot', without, '--config', config, '--mmproxy', 'local', '198.51.100.10:40000');
    assert.match(no.out, /its reply to 198\.51\.100\.10:40000 does not reach the listener's socket \(sent\)/);
    assert.doesNotMatch(no.out, /brought back by/);
    const yes = await cli('explain', '--snapshot', withRule, '--config', config, '--mmproxy', 'local', '198.51.100.10:40000');
    assert.match(yes.out, /^brought back by: ip rule 9000: from 127\.0\.0\.0\/8 iif lo lookup 100 -> local default dev lo table 100, sent by the backend on this host \(iif lo\)/m);
    const v6 = await cli('explain', '--json', '--snapshot', withRule, '--config', config, '--mmproxy', 'local', '[2001:db8:1::10]:40000');
    const parsed = JSON.parse(v6.out) as { mmproxy: { place: string; reaches: boolean; assumedSocket: boolean }; outcome: { kind: string } };
    assert.deepEqual(parsed.mmproxy.place, 'loopback');
    assert.equal(parsed.mmproxy.reaches, true);
    assert.equal(parsed.outcome.kind, 'delivered');
  });

  it('a udp listener: the backend\'s reply datagram followed to the session socket (remote backend by the UDP divert, loopback backend by the loopback rule)', async () => {
    const r = await cli('explain', '--snapshot', without, '--config', config, '--mmproxy', 'dns', '198.51.100.10:40000');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^mmproxy reply: backend 203\.0\.113\.20:53 on another host \(via to-server\): its reply datagram to 198\.51\.100\.10:40000 reaches udp established 198\.51\.100\.10:40000 peer 203\.0\.113\.20:53 transparent/m);
    assert.match(r.out, /^the listener's session socket \(bound to the client, connected to the backend\): udp established 198\.51\.100\.10:40000 peer 203\.0\.113\.20:53 transparent \(tproxy mmproxy\) \(no such flow now: assumed/m);
    assert.match(r.out, /^packet: udp 203\.0\.113\.20:53 -> 198\.51\.100\.10:40000/m);
    assert.match(r.out, /\+ .*divert udp ipv4/);
    assert.match(r.out, /^brought back by: ip rule 9000: from all fwmark 0x1\/0x1 lookup 100 -> local default dev lo table 100, arriving on to-server with mark 0x1/m);
    const v6 = await cli('explain', '--json', '--snapshot', withRule, '--config', config, '--mmproxy', 'dns', '[2001:db8:1::10]:40000');
    const parsed = JSON.parse(v6.out) as { mmproxy: { place: string; reaches: boolean }; socket: { l4proto: string } };
    assert.deepEqual([parsed.mmproxy.place, parsed.mmproxy.reaches, parsed.socket.l4proto], ['loopback', true, 'udp']);
    const no = await cli('explain', '--json', '--snapshot', without, '--config', config, '--mmproxy', 'dns', '[2001:db8:1::10]:40000');
    assert.equal((JSON.parse(no.out) as { mmproxy: { reaches: boolean } }).mmproxy.reaches, false, 'without the loopback rule the datagram does not come back');
  });

  it('refuses what it cannot explain, saying what to give', async () => {
    const none = await cli('explain', '--snapshot', without, '--config', config, '--mmproxy', 'nope', '198.51.100.10:40000');
    assert.equal(none.code, 2);
    assert.match(none.err, /--mmproxy nope: no such mmproxy listener in .*tproxy\.yaml \(remote, local, dns\)/);
    const header = await cli('explain', '--snapshot', without, '--config', config, '--mmproxy', 'remote', '[2001:db8:1::10]:40000');
    assert.match(header.err, /mmproxy remote has no backend6: an IPv6 client reaches the destination its header names/);
    const noConfig = await cli('explain', '--snapshot', without, '--mmproxy', 'remote', '198.51.100.10:40000');
    assert.match(noConfig.err, /--mmproxy needs --config FILE/);
    const bad = await cli('explain', '--snapshot', without, '--config', config, '--mmproxy', 'remote', '198.51.100.10');
    assert.match(bad.err, /is not a client ADDR:PORT/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/main.js';
import { cli } from '../helpers/cli.js';

describe('tproxy command line', () => {
  it('lists every command in --help', async () => {
    const { code, out } = await cli('--help');
    assert.equal(code, 0);
    for (const name of ['demo', 'run', 'rules', 'explain', 'snapshot', 'doctor', 'status', 'config']) assert.match(out, new RegExp(`^  ${name} `, 'm'));
  });

  it('prints the version', async () => {
    const { code, out } = await cli('--version');
    assert.equal(code, 0);
    assert.match(out, /^\d+\.\d+\.\d+\n$/);
  });

  it('has --help on every command', async () => {
    for (const command of COMMANDS) {
      const { code, out } = await cli(command.name, '--help');
      assert.equal(code, 0, command.name);
      assert.match(out, new RegExp(`Usage: tproxy ${command.name}`));
    }
  });

  it('rejects an unknown command with exit 2', async () => {
    const { code, err } = await cli('frobnicate');
    assert.equal(code, 2);
    assert.match(err, /unknown command "frobnicate"/);
  });

  it('status says plainly when no daemon answers on the socket (exit 1), and checks --top', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tproxy-status-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'absent.sock');
    const { code, err } = await cli('status', '--socket', path);
    assert.equal(code, 1);
    assert.equal(err, `tproxy status: no daemon answers on ${path}: no such socket: is tproxy run started with --admin-socket at this path? [ERR_NOT_RUNNING]\n`);
    const top = await cli('status', '--socket', path, '--top', '5000');
    assert.equal(top.code, 2);
    assert.match(top.err, /--top 5000: at most 1000 \[ERR_INVALID_ARGUMENT\]/);
  });

  it('explain rejects a malformed packet with the expected form (exit 2)', async () => {
    const { code, err } = await cli('explain', 'tcp', '1.2.3.4', '->', '5.6.7.8:80');
    assert.equal(code, 2);
    assert.match(err, /invalid packet .*"1\.2\.3\.4" is not ADDRESS:PORT.*Expected: tcp\|udp SADDR:SPORT -> DADDR:DPORT/);
  });

  it('explain --snapshot follows a packet through a saved state, human and JSON', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tproxy-explain-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'state.json');
    writeFileSync(
      file,
      JSON.stringify({
        format: 'tproxy-snapshot',
        version: 1,
        takenAt: '2026-01-01T00:00:00.000Z',
        nft: {
          nftables: [
            { table: { family: 'inet', name: 't' } },
            { chain: { family: 'inet', table: 't', name: 'pre', type: 'filter', hook: 'prerouting', prio: -150, policy: 'accept' } },
            { rule: { family: 'inet', table: 't', chain: 'pre', handle: 4, expr: [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 80 } }, { tproxy: { port: 8000 } }, { mangle: { key: { meta: { key: 'mark' } }, value: 1 } }, { accept: null }] } },
          ],
        },
        iptables: {},
        ipRules: { ipv4: [{ priority: 0, src: 'all', table: 'local' }, { priority: 100, src: 'all', fwmark: '0x1', table: '100' }], ipv6: [] },
        routes: { ipv4: [{ type: 'local', dst: 'default', dev: 'lo', table: '100' }], ipv6: [] },
        addresses: [{ ifname: 'eth0', addr_info: [{ family: 'inet', local: '198.51.100.1', prefixlen: 24 }] }],
        sockets: 'tcp LISTEN 0 128 0.0.0.0:8000 0.0.0.0:* users:(("tproxy",pid=7,fd=3)) <-> inet-sockopt: ( transparent)\n',
        sysctls: {},
        errors: {},
      }),
    );
    const human = await cli('explain', '--snapshot', file, 'tcp', '198.51.100.10:40000', '->', '203.0.113.20:80', 'iif', 'eth0', 'syn');
    assert.equal(human.code, 0, human.err);
    assert.match(human.out, /result: DELIVERED to tcp listen 0\.0\.0\.0:8000 transparent \(tproxy\[7\]\) \(assigned by tproxy\)/);
    assert.match(human.out, /reaches the socket as: mark 0x1, .* \(it ends there; what the proxy sends carries its own DSCP and TTL\)/);
    const json = await cli('explain', '--json', '--snapshot', file, 'tcp 198.51.100.10:40000 -> 203.0.113.20:81 iif eth0');
    const parsed = JSON.parse(json.out) as { outcome: { kind: string }; socket: unknown; oif: unknown; packet: { mark: string }; trace: { text: string }[] };
    assert.equal(parsed.outcome.kind, 'dropped', 'no route to forward it in this snapshot');
    assert.equal(parsed.socket, null);
    assert.ok(parsed.trace.some((s) => /no match \(tcp dport is 81, wanted 80\)/.test(s.text)));
    const missing = await cli('explain', '--snapshot', join(file, 'nope'), 'tcp 1.2.3.4:1 -> 5.6.7.8:2 iif eth0');
    assert.equal(missing.code, 2);
    assert.match(missing.err, /cannot read snapshot/);
  });

  it('rejects an unknown flag with the usage (exit 2)', async () => {
    const { code, err } = await cli('run', '--lisen', '8000');
    assert.equal(code, 2);
    assert.match(err, /Unknown option '--lisen'/);
    assert.match(err, /Usage: tproxy run/);
  });

  it('refuses a single-valued flag given twice instead of taking the last (exit 2); list flags add up', async () => {
    const listen = await cli('rules', 'plan', '--listen', '8000', '--listen', '8001');
    assert.equal(listen.code, 2);
    assert.match(listen.err, /--listen is given more than once, but takes one value: give it once \(for several listeners, write them in a configuration file/);
    const proxy = await cli('run', '--upstream-proxy', 'socks5://a:S3cr3t@192.0.2.1:1080', '--upstream-proxy=socks5://a:S3cr3t@192.0.2.2:1080');
    assert.equal(proxy.code, 2);
    assert.match(proxy.err, /--upstream-proxy is given more than once/);
    assert.doesNotMatch(proxy.err, /S3cr3t/);
    const status = await cli('status', '--top', '1', '--top', '2');
    assert.equal(status.code, 2);
    const lists = await cli('rules', 'plan', '--intercept', 'tcp:80', '--intercept', 'udp:53', '--bypass-dst', '192.0.2.0/24', '--bypass-dst', '198.51.100.0/24', '--local', '--local');
    assert.equal(lists.code, 0, lists.err);
    assert.match(lists.out, /192\.0\.2\.0\/24, 198\.51\.100\.0\/24/);
  });

  it('rejects a bad --intercept with what is allowed (exit 2)', async () => {
    const { code, err } = await cli('rules', 'plan', '--intercept', 'tcp:http');
    assert.equal(code, 2);
    assert.match(err, /"http" is not a port number \(use PROTO:PORT/);
  });

  it('plans rules without touching the host', async () => {
    const { code, out } = await cli('rules', 'plan', '--intercept', 'tcp:80,443', '--intercept', 'udp:53', '--family', '4', '--listen', '9000');
    assert.equal(code, 0);
    assert.match(out, /tcp dport \{ 80, 443 \} tproxy ip to :9000/);
    assert.match(out, /udp dport 53 tproxy ip to :9000/);
    assert.match(out, /^ip -4 rule add fwmark 0x00000001\/0x00000001 lookup 100 priority 9000$/m);
    assert.doesNotMatch(out, /ip6|-6/);
    const json = await cli('rules', 'plan', '--json', '--intercept', 'udp:53');
    const parsed = JSON.parse(json.out) as { plan: { table: { name: string } }; failMode: string; commands: { argv: string[]; input: string }[] };
    assert.equal(parsed.plan.table.name, 'tproxy_rules');
    assert.equal(parsed.failMode, 'drop');
    assert.match(parsed.commands[0]?.input ?? '', /udp dport 53 counter drop comment "tproxy: fail closed udp ipv6"/);
  });

  it('plans the iptables-restore input of a forced backend, one per family', async () => {
    const { code, out } = await cli('rules', 'plan', '--backend', 'iptables-nft', '--intercept', 'tcp:80', '--local');
    assert.equal(code, 0);
    assert.match(out, /^# backend iptables-nft; fail mode drop: while no proxy socket exists, intercepted traffic is dropped \(fail closed\)$/m);
    assert.match(out, /^iptables-nft-restore -w 10 --noflush <<'EOF'\n\*mangle\n/m);
    assert.match(out, /^ip6tables-nft-restore -w 10 --noflush <<'EOF'$/m);
    assert.match(out, /^-I OUTPUT 1 -m comment --comment "tproxy v1 families=4,6 fwmark=0x1\/0x1 table=100 priority=9000" -j TPROXY_RULES_OUT$/m);
  });

  it('names the flag and what is allowed in validation errors (exit 2)', async () => {
    const cidr = await cli('rules', 'plan', '--bypass-dst', '10.1.2.3/8');
    assert.equal(cidr.code, 2);
    assert.equal(cidr.err, 'tproxy rules: --bypass-dst: rules.bypass.destinations: "10.1.2.3/8" has host bits set below /8: did you mean 10.0.0.0/8? [ERR_INVALID_ARGUMENT]\n');
    const mark = await cli('rules', 'plan', '--set-mark', '0x3/0x3');
    assert.match(mark.err, /--set-mark: rules.mangle.mark: conflicting marks: mask 0x00000003 overlaps the fwmark mask 0x00000001/);
    const open = await cli('rules', 'plan', '--backend', 'iptables', '--fail-mode', 'open');
    assert.equal(open.code, 2);
    assert.match(open.err, /failMode: "open" cannot be done with the iptables backend.*Use --fail-mode drop, or the nftables backend/);
    const uid = await cli('rules', 'plan', '--local-exclude-uid', '1000');
    assert.match(uid.err, /--local-exclude-uid: rules.local.excludeUids: only makes sense when this host's own traffic is intercepted: set enabled: true \(--local\)/);
    const backend = await cli('rules', 'plan', '--backend', 'ipchains');
    assert.match(backend.err, /--backend: rules.backend: "ipchains" is not allowed: use one of auto, nft, iptables, iptables-legacy, iptables-nft/);
  });
});

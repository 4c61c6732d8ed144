// `tproxy snapshot` and `tproxy explain` on a live host: the lab router with tproxy rules applied.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES, Lab } from '../../src/lab/topology.js';
import { BIN } from '../helpers/paths.js';

describe('tproxy snapshot and explain on a live host (root)', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create();
    await lab.run('router', [process.execPath, BIN, 'rules', 'apply', '--intercept', 'tcp:80', '--listen', '8100', '--table', 'tproxy_explain']);
  });
  const syn = ['tcp', `${LAB_ADDRESSES.client.ipv4}:40000`, '->', `${LAB_ADDRESSES.server.ipv4}:80`, 'iif', 'to-client', 'syn'];
  after(() => lab.destroy());

  it('snapshot saves the rules, routing, sockets and sysctls', async () => {
    const out = await lab.run('router', [process.execPath, BIN, 'snapshot']);
    const s = JSON.parse(out.stdout) as { format: string; nft: { nftables: Record<string, { name?: string }>[] }; ipRules: { ipv4: unknown[] }; sysctls: Record<string, string> };
    assert.equal(s.format, 'tproxy-snapshot');
    assert.ok(s.nft.nftables.some((i) => i.table?.name === 'tproxy_explain'));
    assert.ok(s.ipRules.ipv4.length >= 4);
    assert.equal(s.sysctls['net.ipv4.ip_forward'], '1');
  });

  it('explain reads the live host: no proxy listening, so the fail-closed rule drops the SYN (the default)', async () => {
    const out = await lab.run('router', [process.execPath, BIN, 'explain', '--json', ...syn]);
    const e = JSON.parse(out.stdout) as { outcome: { kind: string }; trace: { text: string }[] };
    assert.equal(e.outcome.kind, 'dropped');
    assert.ok(e.trace.some((s) => /fail closed tcp ipv4/.test(s.text)), JSON.stringify(e.trace, null, 1));
  });

  it('explain reads the live host: with --fail-mode open and no proxy listening, the SYN is forwarded', async () => {
    await lab.run('router', [process.execPath, BIN, 'rules', 'apply', '--intercept', 'tcp:80', '--listen', '8100', '--table', 'tproxy_explain', '--fail-mode', 'open']);
    const out = await lab.run('router', [process.execPath, BIN, 'explain', '--json', ...syn]);
    const e = JSON.parse(out.stdout) as { outcome: { kind: string }; oif: string; packet: { ttl: number }; trace: { text: string }[] };
    assert.equal(e.outcome.kind, 'forwarded');
    assert.equal(e.oif, 'to-server');
    assert.equal(e.packet.ttl, 63);
    assert.ok(e.trace.some((s) => /tproxy: no socket for 198\.51\.100\.1:8100, the rule stops here/.test(s.text)), JSON.stringify(e.trace, null, 1));
  });
});

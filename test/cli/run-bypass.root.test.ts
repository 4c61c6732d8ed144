// `tproxy run --config` with 50,000 bypass prefixes: applied at start and again on a SIGHUP reload
// (how long each took is reported, not asserted), and the kernel obeys them: traffic to a bypassed
// address is routed past the proxy while the rest is still intercepted.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES, Lab } from '../../src/lab/topology.js';
import { JsonLines } from '../../src/lab/json-lines.js';
import { type ProxyLine, probe, startProxy } from '../helpers/lab-flows.js';
import { AGENT } from '../helpers/paths.js';

const PREFIXES = 50_000;
const HEAD = ['listeners:', '  - name: web', '    port: 8100', '    intercept: [tcp:80, udp:80]', 'tcp: { workers: 1 }', 'rules:', '  table: tproxy_byp', '  routeTable: 133', '  rulePriority: 9133', '  bypass:', '    destinations:'];

/**
 * PREFIXES bypass destinations: 256 IPv4 /32s of 192.0.2.0/24, `extra`, and IPv6 /64s of
 * 2001:db8:100::/40 (none of them a lab address) for the rest.
 */
function bypassFile(extra: readonly string[]): string {
  const entries = [...extra];
  for (let i = 0; i < 256; i++) entries.push(`192.0.2.${i}`);
  for (let i = 0; entries.length < PREFIXES; i++) entries.push(`2001:db8:${(0x100 + (i >> 16)).toString(16)}:${(i & 0xffff).toString(16)}::/64`);
  return `${HEAD.join('\n')}\n${entries.map((e) => `      - ${e}\n`).join('')}`;
}

describe('50,000 bypass prefixes (root)', () => {
  let lab: Lab;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-bypass-'));
    lab = await Lab.create();
    const server = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', '80']);
    await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'echo server ready');
  });
  after(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Who the server saw for a TCP and a UDP probe to `address`: the client (bypassed) or the router (intercepted). */
  const seenBy = async (address: string, family: 'ipv4' | 'ipv6'): Promise<string[]> => {
    const seen: string[] = [];
    for (const transport of ['tcp', 'udp'] as const) {
      const line = await probe(lab, 'client', transport, address, `${transport} to ${address}`, 10_000);
      assert.equal(line.ok, true, `${transport} to ${address}: ${line.reason ?? ''}`);
      const who = line.reply?.seen.address;
      seen.push(who === LAB_ADDRESSES.client[family] ? 'bypassed' : who === LAB_ADDRESSES.routerServerSide[family] ? 'intercepted' : `seen as ${String(who)}`);
    }
    return seen;
  };
  const elements = async (set: string): Promise<number> => {
    const listed = (await lab.run('router', ['nft', '-j', 'list', 'set', 'inet', 'tproxy_byp', set])).stdout;
    const parsed = JSON.parse(listed) as { nftables: { set?: { elem?: unknown[] } }[] };
    return parsed.nftables.find((o) => o.set)?.set?.elem?.length ?? 0;
  };

  it('applies them at start and on reload, and the kernel bypasses exactly the listed addresses', async (t) => {
    const file = join(dir, 'bypass.yaml');
    writeFileSync(file, bypassFile([`${LAB_ADDRESSES.server.ipv4}/32`]));
    const startedAt = performance.now();
    const { process: proxy, lines } = await startProxy(lab, ['--config', file], 180_000);
    t.diagnostic(`start with ${PREFIXES} bypass prefixes: ready after ${Math.round(performance.now() - startedAt)} ms`);
    // The 7 default bypass destinations are in the sets too.
    assert.equal((await elements('bypass_daddr4')) + (await elements('bypass_daddr6')), PREFIXES + 7);
    assert.deepEqual(await seenBy(LAB_ADDRESSES.server.ipv4, 'ipv4'), ['bypassed', 'bypassed']);
    assert.deepEqual(await seenBy(LAB_ADDRESSES.server.ipv6, 'ipv6'), ['intercepted', 'intercepted']);

    // The reload moves the bypass from the server's IPv4 address to its IPv6 network.
    writeFileSync(file, bypassFile(['2001:db8:2::/64']));
    const seen = lines.items.filter((l) => l.type === 'reload.applied').length;
    const reloadAt = performance.now();
    proxy.child.kill('SIGHUP');
    await lines.waitFor(() => lines.items.filter((l: ProxyLine) => l.type === 'reload.applied' || l.type === 'reload.rejected').length > seen, 180_000, 'reload.applied');
    assert.equal(lines.items.filter((l) => l.type === 'reload.rejected').length, 0, 'the reload was applied');
    t.diagnostic(`reload with ${PREFIXES} bypass prefixes: applied after ${Math.round(performance.now() - reloadAt)} ms`);
    assert.deepEqual(await seenBy(LAB_ADDRESSES.server.ipv4, 'ipv4'), ['intercepted', 'intercepted']);
    assert.deepEqual(await seenBy(LAB_ADDRESSES.server.ipv6, 'ipv6'), ['bypassed', 'bypassed']);

    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '', 'no table left');
  });
});

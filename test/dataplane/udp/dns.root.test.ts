// A real DNS exchange through the UDP relay (dnsmasq in the server namespace), and the reply
// fallback when a local DNS service on the router already holds port 53 (EADDRINUSE on the
// reply socket's bind): replies must still come from the resolver's address and port 53.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { LAB_ADDRESSES as A, Lab } from '../../../src/lab/topology.js';
import { findExecutable } from '../../../src/sys/exec.js';
import { agent, startProxy } from '../../helpers/udp-lab.js';
import { UDP_ENGINE_CHOICES } from '../../../src/sys/datagram-io.js';

interface DnsResult {
  ok: boolean;
  reason?: string;
  from: { address: string; port: number };
  rcode: number;
  addresses: string[];
}

const RULES = ['--intercept', 'udp:53', '--listen', '8600', '--table', 'tproxy_dns', '--route-table', '160', '--rule-priority', '9160'];

for (const engine of UDP_ENGINE_CHOICES) describe(`DNS through the UDP relay (root, ${engine} engine)`, () => {
  let lab: Lab;
  before(async () => {
    const dnsmasq = findExecutable('dnsmasq');
    assert.ok(dnsmasq, 'dnsmasq is missing: scripts/setup.sh installs it (apt-get install dnsmasq-base)');
    lab = await Lab.create();
    const resolver = lab.spawn('server', [
      dnsmasq, '--no-daemon', '--conf-file=/dev/null', '--port=53', '--bind-interfaces', '--no-resolv', '--no-hosts', '--user=root', '--log-queries', '--log-facility=-',
      `--listen-address=${A.server.ipv4}`, `--listen-address=${A.server.ipv6}`, '--address=/example.test/192.0.2.53', '--address=/example.test/2001:db8:53::53',
    ]);
    const started = new JsonLines(resolver.child.stderr!);
    // dnsmasq answers once its sockets are bound; poll it directly (no proxy yet) a few times.
    for (let i = 0; i < 50; i++) {
      const r = await agent<DnsResult>(lab, 'server', ['dns', A.server.ipv4, 'example.test', '--timeout-ms', '200']);
      if (r.ok) break;
      assert.notEqual(i, 49, `dnsmasq did not answer: ${started.text.slice(-3).join(' | ')}`);
    }
  });
  after(() => lab.destroy());

  async function query(family: 4 | 6, type: 'A' | 'AAAA'): Promise<DnsResult> {
    const server = family === 4 ? A.server.ipv4 : A.server.ipv6;
    const result = await agent<DnsResult>(lab, 'client', ['dns', server, 'example.test', '--type', type]);
    assert.equal(result.ok, true, result.reason);
    assert.deepEqual(result.from, { address: server, port: 53 }, 'the answer comes from the resolver address and port 53');
    assert.deepEqual(result.addresses, [type === 'A' ? '192.0.2.53' : '2001:db8:53::53']);
    return result;
  }

  it('resolves through the proxy over IPv4 and IPv6', async () => {
    const proxy = await startProxy(lab, [...RULES, '--upstream', 'transparent'], engine);
    await query(4, 'A');
    await query(6, 'AAAA');
    const counters = await proxy.stop();
    assert.equal(counters.sessionsCreated, 2);
    assert.equal(counters.replyFallbacks, 0);
  });

  it('still answers from the resolver address and port 53 when a local service holds port 53 on the router (raw-socket fallback, counted)', async () => {
    const squatter = lab.spawn('router', [
      process.execPath,
      '-e',
      `const d = require('dgram'); let n = 0;
       for (const [type, host] of [['udp4', '0.0.0.0'], ['udp6', '::']]) {
         const s = d.createSocket({ type, ipv6Only: type === 'udp6' }); // no SO_REUSEADDR, like most resolvers
         s.bind(53, host, () => { if (++n === 2) console.log('{"event":"ready"}'); });
       }`,
    ]);
    await new JsonLines<{ event: string }>(squatter.child.stdout!).waitFor((l) => l.event === 'ready', 5000, 'the local service on port 53');
    const proxy = await startProxy(lab, [...RULES, '--upstream', 'direct'], engine);
    await query(4, 'A');
    await query(6, 'AAAA');
    await query(4, 'A');
    // UDP events come from the relay thread in batches: under load a reply can arrive before the line about it.
    let seen = 0;
    await proxy.lines.waitFor((l) => l.type === 'udp.reply.fallback' && ++seen === 3, 10_000, 'a reply fallback line for each of the 3 sessions');
    const fallbacks = proxy.lines.items.filter((l) => l.type === 'udp.reply.fallback');
    assert.equal(fallbacks.length, 3, 'each session found the reply address taken');
    const counters = await proxy.stop();
    assert.equal(counters.replyFallbacks, 3);
    assert.equal(counters.datagramsFromServers, 3);
    assert.equal(counters.errors['reply-fallback-failed'], 0);
    squatter.child.kill('SIGTERM');
    await squatter.exited;
  });
});

// UDP sessions routed through real kernel rules: the route of a flow's first datagram picks its
// outbound (direct: the router's address; transparent: the client's own; reject: dropped and
// counted), under both mappings; a name route reads the first datagram for a QUIC Initial's SNI
// (the RFC 9001 A.2 packet) and a datagram that is not QUIC routes without a name at once. Every
// session's route and outbound are in its log line and in the counters per route and outbound.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A, Lab } from '../../../src/lab/topology.js';
import { RFC9001_CLIENT_INITIAL } from '../../helpers/rfc9001.js';
import { spawnAgent, startEchoServer, startProxy } from '../../helpers/udp-lab.js';

interface Datagram {
  event: string;
  from?: { address: string; port: number };
  text?: string;
}

const config = (mapping: string): string => `listeners:
  - name: main
    port: 8600
    intercept: ["udp:80-81"]
    upstream: direct
    udp: { mapping: ${mapping} }
routes:
  - name: v6-blocked
    outbound: reject
    destinations: ["${A.server.ipv6}"]
  - name: quic-blocked
    outbound: reject
    names: [example.com]
    ports: [80]
  - name: keep-client
    outbound: transparent
    ports: [81]
rules:
  table: tproxy_udp_routes
  routeTable: 151
  rulePriority: 9151
`;

describe('UDP routes (root)', () => {
  let lab: Lab;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-udp-routes-'));
    lab = await Lab.create();
    await startEchoServer(lab, 80);
    await startEchoServer(lab, 81);
  });
  after(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const mapping of ['endpoint-dependent', 'endpoint-independent'] as const) {
    it(`${mapping}: each flow leaves through its route's outbound; reject and the QUIC name route drop, counted`, async () => {
      const file = join(dir, `${mapping}.yaml`);
      writeFileSync(file, config(mapping));
      const proxy = await startProxy(lab, ['--config', file]);
      const client = spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', '0.0.0.0']);
      const client6 = spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', '::']);
      try {
        await client.lines.waitFor((l) => l.event === 'ready', 5000, 'client ready');
        await client6.lines.waitFor((l) => l.event === 'ready', 5000, 'IPv6 client ready');
        const echoes = (): Datagram[] => client.lines.items.filter((l) => l.event === 'datagram');
        const echo = async (port: number, text: string): Promise<{ address: string; port: number }> => {
          client.send(`send ${A.server.ipv4} ${port} ${text}`);
          const got = await client.lines.waitFor((l) => l.event === 'datagram' && (l.text ?? '').includes(`"${text}"`), 10_000, `the echo of ${text}`);
          return (JSON.parse(got.text ?? '{}') as { seen: { address: string; port: number } }).seen;
        };

        // The QUIC Initial names example.com: rejected by name; nothing is opened for it.
        client.send(`send-hex ${A.server.ipv4} 80 ${Buffer.from(RFC9001_CLIENT_INITIAL).toString('hex')}`);
        await proxy.lines.waitFor((l) => l.type === 'udp.drop' && l.reason === 'rejected', 10_000, 'the drop of the QUIC Initial');
        // The same flow's next datagram is no QUIC Initial: routed without a name, at once.
        const direct = await echo(80, 'plain');
        assert.equal(direct.address, A.routerServerSide.ipv4, 'the default outbound (direct) leaves from the router');
        const transparent = await echo(81, 'keep');
        assert.equal(transparent.address, A.client.ipv4, 'the route keep-client (transparent) leaves from the client itself');
        // IPv6 to the server: rejected by destination (counted below; drop events are rate-limited).
        client6.send(`send ${A.server.ipv6} 80 blocked`);
        await client6.lines.waitFor((l) => l.event === 'sent', 5000, 'the v6 datagram sent');
        // Answered from the flow's reply path: not routed again.
        await echo(80, 'after');
        assert.deepEqual(echoes().map((d) => (JSON.parse(d.text ?? '{}') as { message: string }).message), ['plain', 'keep', 'after'], 'only the routed flows were answered');
        client6.send(`send ${A.server.ipv6} 81 v6-keep`);
        await client6.lines.waitFor((l) => l.event === 'sent', 5000, 'the second v6 datagram sent');
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(client6.lines.items.filter((l) => l.event === 'datagram'), [], 'no IPv6 datagram was answered');

        const opened = proxy.lines.items.filter((l) => l.type === 'udp.session.open');
        assert.deepEqual(opened.map((l) => [l.route ?? 'default', l.outbound]), [['default', 'direct'], ['keep-client', 'transparent']], 'one session per outbound, named in its log line');
      } catch (error) {
        proxy.process.child.kill('SIGTERM');
        await proxy.process.exited;
        throw new Error(`${String(error)}\nproxy: ${proxy.lines.text.slice(-8).join('\n')}\nclient: ${client.lines.items.map((l) => JSON.stringify(l)).join('\n')}`, { cause: error });
      } finally {
        for (const c of [client, client6]) c.proc.child.stdin?.end();
        await Promise.all([client.proc.exited, client6.proc.exited]);
      }
      const counters = await proxy.stop();
      assert.equal(counters.sessionsCreated, 2);
      assert.equal(counters.errors.rejected, 3);
      assert.equal(counters.quicSniffs, 2, 'the first datagram of each flow to port 80 was read for a name: the Initial (rejected, so nothing opened) and plain');
      assert.equal(counters.quicNames, 1);
      assert.equal(counters.routes['quic-blocked']?.rejected, 1);
      assert.equal(counters.routes['v6-blocked']?.rejected, 2, 'every IPv6 destination, whatever its port');
      assert.equal(counters.routes['keep-client']?.sessions, 1);
      assert.equal(counters.routes['default']?.sessions, 1);
      assert.equal(counters.outbounds['direct']?.datagramsFromClients, 2);
      assert.equal(counters.outbounds['direct']?.datagramsFromServers, 2);
      assert.equal(counters.outbounds['transparent']?.datagramsFromClients, 1);
      assert.equal(counters.outbounds['reject']?.rejected, 3);
    });
  }
});

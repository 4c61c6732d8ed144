// UDP sessions routed through real kernel rules: the route of a flow's first datagram picks its
// outbound (direct: the router's address; transparent: the client's own; reject: dropped and
// counted), under both mappings; a name route reads the first datagram for a QUIC Initial's SNI
// (the RFC 9001 A.2 packet) and a datagram that is not QUIC routes without a name at once; a
// ClientHello over two Initial datagrams is held until its name is in (then rejected, or relayed in
// order), and half of one goes by address after the sniff timeout. Every session's route and
// outbound are in its log line and in the counters per route and outbound.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A, Lab } from '../../../src/lab/topology.js';
import { createHash } from 'node:crypto';
import { clientHelloMessage, extension, padding, serverNameExtension } from '../../helpers/client-hello.js';
import { RFC9001_CLIENT_INITIAL, cryptoFrame, protectClientInitial } from '../../helpers/rfc9001.js';
import { spawnAgent, startEchoServer, startProxy } from '../../helpers/udp-lab.js';
import { UDP_ENGINE_CHOICES } from '../../../src/sys/datagram-io.js';

interface Datagram {
  event: string;
  from?: { address: string; port: number };
  text?: string;
  sha1?: string;
}

/** A ClientHello the size of Chrome's with a post-quantum key share, in two Initial datagrams. */
function splitInitials(name: string, dcid: string): [Buffer, Buffer] {
  const hello = clientHelloMessage({ extensions: [extension(51, Buffer.alloc(1222, 0x42)), padding(400), serverNameExtension({ name })] });
  const id = Buffer.from(dcid, 'hex');
  return [protectClientInitial(id, cryptoFrame(0, hello.subarray(0, 1100)), { packetNumber: 0 }), protectClientInitial(id, cryptoFrame(1100, hello.subarray(1100)), { packetNumber: 1 })];
}
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

const QUIC_CONFIG = `listeners:
  - name: quic
    port: 8602
    intercept: ["udp:82"]
    sniffTimeoutMs: 300
routes:
  - name: quic-blocked
    outbound: reject
    names: [example.com]
rules:
  table: tproxy_udp_quic
  routeTable: 152
  rulePriority: 9152
`;

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

for (const engine of UDP_ENGINE_CHOICES) describe(`UDP routes (root, ${engine} engine)`, () => {
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
      const proxy = await startProxy(lab, ['--config', file], engine);
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

  it('a QUIC ClientHello over two Initial datagrams: held until the name is in, then rejected or relayed in order; an incomplete one goes by address after the sniff timeout', async () => {
    // A raw echo on port 82: each datagram comes back unchanged, so the client sees exactly what reached the server.
    await startEchoServer(lab, 83, 82);
    const file = join(dir, 'quic.yaml');
    writeFileSync(file, QUIC_CONFIG);
    const proxy = await startProxy(lab, ['--config', file], engine);
    const peers = ['blocked', 'allowed', 'incomplete'].map(() => spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', '0.0.0.0']));
    const [blocked, allowed, incomplete] = peers as [(typeof peers)[number], (typeof peers)[number], (typeof peers)[number]];
    const echoed = (peer: (typeof peers)[number]): string[] => peer.lines.items.filter((l) => l.event === 'datagram').map((l) => l.sha1 ?? '');
    const send = async (peer: (typeof peers)[number], datagram: Buffer): Promise<void> => {
      const sent = peer.lines.items.filter((l) => l.event === 'sent').length;
      peer.send(`send-hex ${A.server.ipv4} 82 ${datagram.toString('hex')}`);
      await peer.lines.waitFor(() => peer.lines.items.filter((l) => l.event === 'sent').length > sent, 5000, 'a datagram sent');
    };
    try {
      for (const peer of peers) await peer.lines.waitFor((l) => l.event === 'ready', 5000, 'client ready');
      // example.com in two datagrams: both held, then both dropped by the name route.
      const [b1, b2] = splitInitials('example.com', '1111111111111111');
      await send(blocked, b1);
      await send(blocked, b2);
      await proxy.lines.waitFor((l) => l.type === 'udp.drop' && l.reason === 'rejected', 10_000, 'the drop of the blocked ClientHello');
      // The flow's next datagram is no Initial: routed by address at once, the only one echoed.
      const plain = Buffer.from('plain after the blocked ClientHello');
      await send(blocked, plain);
      await blocked.lines.waitFor((l) => l.event === 'datagram', 10_000, 'the echo of plain');

      // allowed.example in two datagrams: held, then relayed in order.
      const [a1, a2] = splitInitials('allowed.example', '2222222222222222');
      await send(allowed, a1);
      await send(allowed, a2);
      await allowed.lines.waitFor(() => echoed(allowed).length === 2, 10_000, 'both Initials of allowed.example echoed');

      // Only the first half of example.com's ClientHello: after the sniff timeout it goes by address.
      const [i1] = splitInitials('example.com', '3333333333333333');
      await send(incomplete, i1);
      await incomplete.lines.waitFor(() => echoed(incomplete).length === 1, 10_000, 'the incomplete Initial relayed after the sniff timeout');

      assert.deepEqual(echoed(blocked), [sha1(plain)], 'nothing of the blocked ClientHello reached the server');
      assert.deepEqual(echoed(allowed), [sha1(a1), sha1(a2)], 'the held datagram first, then the one that completed the name');
      assert.deepEqual(echoed(incomplete), [sha1(i1)]);
      // The open lines come from the loop's thread in batches: the last may follow its echo.
      await proxy.lines.waitFor(() => proxy.lines.items.filter((l) => l.type === 'udp.session.open').length >= 3, 5000, 'three session open lines');
      const opened = proxy.lines.items.filter((l) => l.type === 'udp.session.open').map((l) => [l.route ?? 'default', l.outbound]);
      assert.deepEqual(opened, [['default', 'direct'], ['default', 'direct'], ['default', 'direct']]);
    } catch (error) {
      proxy.process.child.kill('SIGTERM');
      await proxy.process.exited;
      throw new Error(`${String(error)}\nproxy: ${proxy.lines.text.slice(-8).join('\n')}`, { cause: error });
    } finally {
      for (const peer of peers) peer.proc.child.stdin?.end();
      await Promise.all(peers.map((p) => p.proc.exited));
    }
    const counters = await proxy.stop();
    assert.deepEqual([counters.errors.rejected, counters.routes['quic-blocked']?.rejected], [2, 2], 'both datagrams of the blocked ClientHello');
    assert.equal(counters.quicSniffs, 4, 'the first datagram of each flow, and plain (its flow had no session)');
    assert.equal(counters.quicNames, 2, 'example.com and allowed.example, each from two datagrams');
    assert.equal(counters.sessionsCreated, 3);
    assert.deepEqual([counters.outbounds['direct']?.datagramsFromClients, counters.outbounds['direct']?.datagramsFromServers], [4, 4]);
  });
});

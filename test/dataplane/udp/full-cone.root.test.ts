// Mapping behaviour: with --udp-mapping endpoint-independent (full cone) any remote that sends to
// the client's upstream port reaches the client, with that remote as source; with the default
// endpoint-dependent mapping only the original destination can answer.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A, Lab } from '../../../src/lab/topology.js';
import { spawnAgent, startEchoServer, startProxy } from '../../helpers/udp-lab.js';
import { UDP_ENGINE_CHOICES } from '../../../src/sys/datagram-io.js';

interface Datagram {
  event: string;
  from?: { address: string; port: number };
  text?: string;
}

const RULES = ['--intercept', 'udp:80,9999', '--listen', '8500', '--table', 'tproxy_cone', '--route-table', '150', '--rule-priority', '9150'];

for (const engine of UDP_ENGINE_CHOICES) describe(`UDP mapping behaviour (root, ${engine} engine)`, () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create();
    await startEchoServer(lab);
  });
  after(() => lab.destroy());

  async function scene(family: 4 | 6) {
    const server = family === 4 ? A.server.ipv4 : A.server.ipv6;
    const client = spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', family === 4 ? '0.0.0.0' : '::']);
    const stranger = spawnAgent<Datagram>(lab, 'server', ['udp-peer', '--bind', server, '--port', '9999']);
    await client.lines.waitFor((l) => l.event === 'ready', 5000, 'client ready');
    await stranger.lines.waitFor((l) => l.event === 'ready', 5000, 'stranger ready');
    client.send(`send ${server} 80 hello`);
    const echo = await client.lines.waitFor((l) => l.event === 'datagram', 5000, 'echo');
    const mapped = (JSON.parse(echo.text ?? '{}') as { seen: { address: string; port: number } }).seen;
    const datagrams = (): Datagram[] => client.lines.items.filter((l) => l.event === 'datagram');
    const done = async (): Promise<void> => {
      for (const p of [client, stranger]) p.proc.child.stdin?.end();
      await Promise.all([client.proc.exited, stranger.proc.exited]);
    };
    return { server, client, stranger, mapped, datagrams, done };
  }

  for (const [family, upstream] of [[4, 'direct'], [6, 'direct'], [4, 'transparent']] as const) {
    it(`endpoint-independent (IPv${family}, --upstream ${upstream}): a second remote reaches the client through the same mapping, and the client answers it from that mapping`, async () => {
      const proxy = await startProxy(lab, [...RULES, '--udp-mapping', 'endpoint-independent', '--upstream', upstream], engine);
      const s = await scene(family);
      const expected = upstream === 'direct' ? (family === 4 ? A.routerServerSide.ipv4 : A.routerServerSide.ipv6) : A.client.ipv4;
      assert.equal(s.mapped.address, expected, upstream === 'direct' ? 'the mapping is on the router' : 'the mapping is the client itself');
      s.stranger.send(`send ${s.mapped.address} ${s.mapped.port} from the stranger`);
      const got = await s.client.lines.waitFor((l) => l.event === 'datagram' && l.text === 'from the stranger', 5000, 'the stranger reaching the client');
      assert.deepEqual(got.from, { address: s.server, port: 9999 }, 'the stranger is the source the client sees');
      s.client.send(`send ${s.server} 9999 back to the stranger`);
      const back = await s.stranger.lines.waitFor((l) => l.event === 'datagram', 5000, 'the client answering the stranger');
      assert.equal(back.text, 'back to the stranger');
      assert.deepEqual(back.from, s.mapped, 'one mapping for every destination: the stranger sees the same address and port as the server');
      await s.done();
      const counters = await proxy.stop();
      assert.equal(counters.sessionsCreated, 1);
      assert.equal(counters.peersCreated, 2);
      assert.equal(counters.peersInbound, 1, 'the stranger came in through the relay');
    });
  }

  it('endpoint-dependent (default): the second remote does not reach the client, and the client gets a new mapping toward it', async () => {
    const proxy = await startProxy(lab, [...RULES, '--upstream', 'direct'], engine);
    const s = await scene(4);
    s.stranger.send(`send ${s.mapped.address} ${s.mapped.port} from the stranger`);
    await s.stranger.lines.waitFor((l) => l.event === 'sent', 5000, 'the stranger sending');
    s.client.send(`send ${s.server} 80 second`);
    await s.client.lines.waitFor((l) => l.event === 'datagram' && (l.text ?? '').includes('"second"'), 5000, 'the second echo');
    assert.deepEqual(s.datagrams().map((d) => d.from), [{ address: s.server, port: 80 }, { address: s.server, port: 80 }], 'only the two echoes reached the client');
    s.client.send(`send ${s.server} 9999 to the stranger`);
    const toStranger = await s.stranger.lines.waitFor((l) => l.event === 'datagram', 5000, 'the client reaching the stranger');
    assert.equal(toStranger.from?.address, s.mapped.address);
    assert.notEqual(toStranger.from?.port, s.mapped.port, 'a new mapping per destination');
    await s.done();
    const counters = await proxy.stop();
    assert.equal(counters.sessionsCreated, 2);
    assert.equal(counters.peersInbound, 0);
  });

  for (const family of [4, 6] as const) {
    it(`endpoint-dependent with --upstream transparent (IPv${family}): datagrams to the client's address and port from another port of the server and from a third address are dropped at the router, not forwarded`, async () => {
      const third = family === 4 ? '203.0.113.21' : '2001:db8:2::21';
      // A secondary (IPv4) or deprecated (IPv6) address: the server's own replies keep their source.
      await lab.run('server', ['ip', 'addr', 'add', `${third}/${family === 4 ? 24 : 64}`, 'dev', 'eth0', ...(family === 6 ? ['nodad', 'preferred_lft', '0'] : [])]);
      const proxy = await startProxy(lab, [...RULES, '--upstream', 'transparent'], engine);
      const s = await scene(family);
      assert.deepEqual(s.mapped.address, family === 4 ? A.client.ipv4 : A.client.ipv6, 'the server sees the client itself');
      const outsider = spawnAgent<Datagram>(lab, 'server', ['udp-peer', '--bind', third, '--port', '9999']);
      await outsider.lines.waitFor((l) => l.event === 'ready', 5000, 'third address ready');
      s.stranger.send(`send ${s.mapped.address} ${s.mapped.port} from the stranger`);
      outsider.send(`send ${s.mapped.address} ${s.mapped.port} from a third address`);
      await s.stranger.lines.waitFor((l) => l.event === 'sent', 5000, 'the stranger sending');
      await outsider.lines.waitFor((l) => l.event === 'sent', 5000, 'the third address sending');
      // The original destination still answers, after both unsolicited datagrams were sent.
      s.client.send(`send ${s.server} 80 second`);
      await s.client.lines.waitFor((l) => l.event === 'datagram' && (l.text ?? '').includes('"second"'), 5000, 'the second echo');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(s.datagrams().map((d) => d.from), [{ address: s.server, port: 80 }, { address: s.server, port: 80 }], 'only the two echoes reached the client');
      outsider.proc.child.stdin?.end();
      await outsider.proc.exited;
      await s.done();
      const counters = await proxy.stop();
      assert.equal(counters.errors.unsolicited, 2, 'both were dropped by the client\'s guard socket and counted');
      assert.equal(counters.sessionsCreated, 1);
      await lab.run('server', ['ip', 'addr', 'del', `${third}/${family === 4 ? 24 : 64}`, 'dev', 'eth0']);
    });
  }
});

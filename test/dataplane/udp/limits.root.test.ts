// Session limits of the UDP relay: least-recently-used eviction at the cap, and idle expiry.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A, Lab } from '../../../src/lab/topology.js';
import { spawnAgent, startEchoServer, startProxy, type RunningProxy } from '../../helpers/udp-lab.js';
import { UDP_ENGINE_CHOICES } from '../../../src/sys/datagram-io.js';

interface Datagram {
  event: string;
  local?: { port: number };
  text?: string;
}

const RULES = ['--intercept', 'udp:80', '--listen', '8400', '--family', '4', '--table', 'tproxy_limits', '--route-table', '140', '--rule-priority', '9140', '--upstream', 'direct'];

/** A client socket that sends to the server and waits for each echo. */
async function client(lab: Lab): Promise<{ port: number; exchange(text: string): Promise<void>; close(): Promise<void> }> {
  const peer = spawnAgent<Datagram>(lab, 'client', ['udp-peer']);
  const ready = await peer.lines.waitFor((l) => l.event === 'ready', 5000, 'udp-peer ready');
  let echoes = 0;
  return {
    port: ready.local?.port ?? 0,
    async exchange(text) {
      const want = ++echoes;
      peer.send(`send ${A.server.ipv4} 80 ${text}`);
      await peer.lines.waitFor((l) => l.event === 'datagram' && peer.lines.items.filter((x) => x.event === 'datagram').length >= want, 5000, `echo of "${text}"`);
    },
    async close() {
      peer.proc.child.stdin?.end();
      await peer.proc.exited;
    },
  };
}

for (const engine of UDP_ENGINE_CHOICES) describe(`UDP session limits (root, ${engine} engine)`, () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create();
    await startEchoServer(lab);
  });
  after(() => lab.destroy());

  it('evicts the least recently used session at --udp-max-sessions', async () => {
    const proxy: RunningProxy = await startProxy(lab, [...RULES, '--udp-max-sessions', '2'], engine);
    const [a, b, c] = [await client(lab), await client(lab), await client(lab)];
    await a.exchange('a1');
    await b.exchange('b1');
    await a.exchange('a2'); // a is now more recent than b
    await c.exchange('c1'); // the third session: b, the least recently used, goes
    const evicted = await proxy.lines.waitFor((l) => l.type === 'udp.session.close' && l.reason === 'evicted', 5000, 'an eviction');
    assert.equal(evicted.client?.port, b.port, 'the least recently used session was evicted');
    await a.exchange('a3'); // a's session is still there
    await b.exchange('b2'); // b gets a new session (evicting c, now the least recent)
    for (const x of [a, b, c]) await x.close();
    const counters = await proxy.stop();
    assert.equal(counters.sessionsCreated, 4);
    assert.equal(counters.sessionsEvicted, 2);
    assert.equal(counters.datagramsFromServers, 6);
  });

  it('expires a session after --udp-idle-timeout-ms of silence; the next datagram opens a new one', async () => {
    const proxy = await startProxy(lab, [...RULES, '--udp-idle-timeout-ms', '300'], engine);
    const a = await client(lab);
    await a.exchange('before');
    const expired = await proxy.lines.waitFor((l) => l.type === 'udp.session.close', 10_000, 'idle expiry');
    assert.equal(expired.reason, 'idle-timeout');
    assert.equal(expired.client?.port, a.port);
    await a.exchange('after');
    await a.close();
    const counters = await proxy.stop();
    assert.equal(counters.sessionsCreated, 2);
    assert.ok(counters.sessionsExpired >= 1);
  });
});

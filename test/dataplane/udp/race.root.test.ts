// The bind-before-connect race of reply sockets, made to happen on purpose: the relay holds
// between bind() and connect() of its first reply socket while 19 other clients send to the same
// destination. Their datagrams land on that socket; each must reach its own session.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UdpCounters } from '../../../src/dataplane/udp/counters.js';
import { Nft } from '../../../src/control/nft.js';
import { ruleCounter } from '../../../src/core/rules/nft-expected.js';
import { LAB_ADDRESSES as A, type Lab } from '../../../src/lab/topology.js';
import { echoLabPerSuite, spawnAgent, startRelayHost } from '../../helpers/udp-lab.js';
import { UDP_ENGINE_CHOICES } from '../../../src/sys/datagram-io.js';

const RULES = ['--intercept', 'udp:80', '--listen', '8300', '--family', '4', '--table', 'tproxy_race', '--route-table', '130', '--rule-priority', '9130'];

async function waitForDivertedPackets(lab: Lab, packets: number): Promise<void> {
  const nft = new Nft(lab.runnerFor('router'));
  let seen = 0;
  for (let i = 0; i < 100 && seen < packets; i++) {
    const state = await nft.readTable('inet', 'tproxy_race');
    const divert = state?.rules.find((r) => r.comment === 'tproxy: divert udp ipv4');
    seen = divert ? (ruleCounter(divert)?.packets ?? 0) : 0;
    if (seen < packets) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(seen, packets, 'datagrams diverted to the bound reply socket');
}

for (const engine of UDP_ENGINE_CHOICES) describe(`UDP bind-before-connect race (root, ${engine} engine)`, () => {
  const suite = echoLabPerSuite(RULES);

  it('hands datagrams that reach a reply socket before connect() to their own sessions, never answering them as another client', async () => {
    const { relay, events } = await startRelayHost<{ type: string; counters?: UdpCounters; engine?: string }>(suite.lab, { families: [4], port: 8300, upstream: 'direct', upstreamMark: 2, idleTimeoutMs: 60_000, maxSessions: 1000, engine, testSeam: { holdFirstReplyBind: true } });
    if (engine === 'uring') assert.equal(events.find((l) => l.type === 'udp.engine')?.engine, 'uring', 'the uring engine runs (no fallback to epoll)');
    const flows = spawnAgent<{ event?: string; ok?: boolean; replies?: number; problems?: string[] }>(suite.lab, 'client', ['udp-flows', A.server.ipv4, '80', '--count', '20', '--rounds', '2', '--hold-first']);
    await events.waitFor((l) => l.type === 'held', 10_000, 'the relay holding between bind and connect of the first reply socket');
    flows.send('go');
    await flows.lines.waitFor((l) => l.event === 'all-sent', 10_000, 'the other 19 clients sending');
    // They are routed to the bound reply socket (the divert rule finds a transparent socket that
    // owns that address and port): wait until the divert rule counted all 19, then let the relay
    // connect and drain.
    await waitForDivertedPackets(suite.lab, 19);
    relay.child.stdin?.write('release\n');
    const result = await flows.lines.waitFor((l) => l.ok !== undefined, 20_000, 'udp-flows result');
    assert.deepEqual(result.problems, []);
    assert.equal(result.replies, 40);
    relay.child.stdin?.write('stop\n');
    const stats = await events.waitFor((l) => l.type === 'udp.stats', 10_000, 'final counters');
    assert.equal(stats.counters?.raceHandovers, 19, 'the 19 datagrams that hit the first reply socket were handed over');
    assert.equal(stats.counters?.sessionsCreated, 20);
    assert.equal(stats.counters?.datagramsFromServers, 40);
  });
});

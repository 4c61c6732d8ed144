// The UDP relay loop's thread dying: its sessions are closed, it is started again on the same
// listeners after a backoff and relays again, at most MAX_RESTARTS_PER_MINUTE times a minute; the
// next death is the relay's failure (onFailure: the daemon stops and removes its rules). The
// deaths come from UdpRelay.testSeamCrashLoop (the thread throws at its next turn).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { UdpCounters } from '../../../src/dataplane/udp/counters.js';
import { MAX_RESTARTS_PER_MINUTE } from '../../../src/dataplane/udp/relay.js';
import { LAB_ADDRESSES as A } from '../../../src/lab/topology.js';
import { agent, echoLabPerSuite, startRelayHost } from '../../helpers/udp-lab.js';
import { UDP_ENGINE_CHOICES } from '../../../src/sys/datagram-io.js';

const RULES = ['--intercept', 'udp:80', '--listen', '8350', '--family', '4', '--table', 'tproxy_restart', '--route-table', '135', '--rule-priority', '9135'];

interface Line {
  type: string;
  restarts?: number;
  message?: string;
  counters?: UdpCounters;
  engine?: string;
}

for (const engine of UDP_ENGINE_CHOICES) describe(`UDP relay loop restart (root, ${engine} engine)`, () => {
  const suite = echoLabPerSuite(RULES);

  it('starts a crashed loop again with a growing backoff and relays through it; the death past the limit is the relay\'s failure', async () => {
    const { relay, events } = await startRelayHost<Line>(suite.lab, { families: [4], port: 8350, upstream: 'direct', upstreamMark: 2, idleTimeoutMs: 60_000, maxSessions: 1000, engine });
    if (engine === 'uring') assert.equal(events.find((l) => l.type === 'udp.engine')?.engine, 'uring', 'the uring engine runs (no fallback to epoll)');
    const flows = (): Promise<{ ok: boolean; replies: number; problems: string[] }> => agent(suite.lab, 'client', ['udp-flows', A.server.ipv4, '80', '--count', '5', '--rounds', '2']);
    const before = await flows();
    assert.deepEqual(before.problems, []);

    const waits: number[] = [];
    for (let restart = 1; restart <= MAX_RESTARTS_PER_MINUTE; restart++) {
      const crashedAt = Date.now();
      relay.child.stdin?.write('crash\n');
      await events.waitFor((l) => l.type === 'udp.restart' && l.restarts === restart, 20_000, `restart ${restart}`);
      waits.push(Date.now() - crashedAt);
      // The new loop relays: new sessions (the dead loop closed its own), every echo back.
      const result = await flows();
      assert.deepEqual(result.problems, [], `traffic after restart ${restart}`);
      assert.equal(result.replies, 10);
    }
    // Backoff of 100 ms doubling per restart of the minute: lower bounds only (the machine may be slow).
    waits.forEach((ms, i) => assert.ok(ms >= 100 * 2 ** i, `restart ${i + 1} came after ${ms} ms, before its backoff of ${100 * 2 ** i} ms`));
    const crashes = events.items.filter((l) => l.type === 'error' && l.message?.includes('crash requested by a test'));
    assert.equal(crashes.length, MAX_RESTARTS_PER_MINUTE, 'each death reported as an error event');

    const counters = async (): Promise<UdpCounters | undefined> => {
      const seen = events.items.filter((l) => l.type === 'counters').length;
      relay.child.stdin?.write('counters\n');
      await events.waitFor(() => events.items.filter((l) => l.type === 'counters').length > seen, 10_000, 'counters');
      return events.items.filter((l) => l.type === 'counters').pop()?.counters;
    };
    // Each dead loop closed its sessions: 5 flows before the first crash and after each restart.
    const running = await counters();
    assert.equal(running?.sessionsCreated, 5 * (MAX_RESTARTS_PER_MINUTE + 1));
    assert.equal(running?.sessionsClosed, 5 * MAX_RESTARTS_PER_MINUTE);
    assert.equal(running?.sessionsActive, 5);

    relay.child.stdin?.write('crash\n');
    const failure = await events.waitFor((l) => l.type === 'failure', 20_000, 'the relay giving up');
    assert.match(failure.message ?? '', /crash requested by a test/);
    assert.ok(events.items.some((l) => l.type === 'error' && l.message?.includes(`ended ${MAX_RESTARTS_PER_MINUTE + 1} times within a minute: not started again`)));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(events.items.filter((l) => l.type === 'udp.restart').length, MAX_RESTARTS_PER_MINUTE, 'no restart after the failure');
    // One udp.engine line when uring was asked for (restarted loops on the same engine add none); none for epoll.
    assert.deepEqual(events.items.filter((l) => l.type === 'udp.engine').map((l) => l.engine), engine === 'uring' ? ['uring'] : []);

    const failed = await counters();
    assert.equal(failed?.sessionsActive, 0, 'the last loop closed its sessions too');
    assert.equal(failed?.sessionsClosed, 5 * (MAX_RESTARTS_PER_MINUTE + 1));

    relay.child.stdin?.write('stop\n');
    assert.equal(await relay.exited, 0);
  });
});

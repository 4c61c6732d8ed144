// A UDP relay loop that does not stop within the stop timeout: the relay terminates its thread,
// closes the sockets the loop left open (its sessions') and gives back the descriptor budget
// entries it still held (its engine's and its sessions'), so a reload or restart of the UDP side
// gets the whole budget and no dead socket keeps a flow's datagrams. The loop that will not stop
// comes from the test seam (stuckOnStop: asked to stop, its thread blocks instead).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAB_ADDRESSES as A } from '../../../src/lab/topology.js';
import { DATAGRAM_IO_DESCRIPTORS, UDP_ENGINE_CHOICES } from '../../../src/sys/datagram-io.js';
import { agent, echoLabPerSuite, startRelayHost } from '../../helpers/udp-lab.js';

const RULES = ['--intercept', 'udp:80', '--listen', '8351', '--family', '4', '--table', 'tproxy_stoptimeout', '--route-table', '136', '--rule-priority', '9136'];

interface Line {
  type: string;
  descriptors?: number;
  udpInUse?: number;
  sockets?: number;
  engineDescriptors?: number;
  engineErrors?: string[];
}

for (const engine of UDP_ENGINE_CHOICES) describe(`UDP relay loop killed after the stop timeout (root, ${engine} engine)`, () => {
  const suite = echoLabPerSuite(RULES);

  it('closes the sockets the terminated loop left open and gives back every budget entry it held', async () => {
    const { relay, events } = await startRelayHost<Line>(suite.lab, { families: [4], port: 8351, upstream: 'direct', upstreamMark: 2, idleTimeoutMs: 60_000, maxSessions: 1000, engine, testSeam: { holdFirstReplyBind: false, stuckOnStop: true } });
    const flows = await agent<{ replies: number; problems: string[] }>(suite.lab, 'client', ['udp-flows', A.server.ipv4, '80', '--count', '5', '--rounds', '1']);
    assert.deepEqual(flows.problems, []);
    assert.equal(flows.replies, 5);

    const asked = Date.now();
    relay.child.stdin?.write('stop-and-stay\n');
    const budget = await events.waitFor((l) => l.type === 'budget', 20_000, 'the relay stopped');
    assert.ok(Date.now() - asked >= 1900, 'the loop did not stop: the relay waited for its 2 s stop timeout');
    // Five sessions of an upstream and a reply socket each, and the engine's own descriptors.
    const held = 5 * 2 + DATAGRAM_IO_DESCRIPTORS[engine];
    assert.deepEqual(
      events.items.filter((l) => l.type === 'udp.loop.reclaimed').map((l) => [l.descriptors, l.sockets, l.engineDescriptors, l.engineErrors]),
      [[held, 5 * 2, engine === 'uring' ? 2 : undefined, undefined]],
      'the entries the loop held given back, its session sockets closed (with uring its ring torn down: the ring and its epoll closed), once',
    );
    assert.equal(budget.udpInUse, 0, 'no UDP entry of the budget left taken');
    assert.equal(budget.sockets, 0, 'no socket left open in the process (the listeners closed by the stop, the sessions\' by the relay)');
    assert.equal(events.items.filter((l) => l.type === 'udp.session.close').length, 0, 'the loop closed nothing (it never shut down)');
    // The kernel's view, the process still running: no socket of the relay left (listener, reply
    // sockets bound to the server's address, upstream sockets). With uring the dead loop's ring
    // held its sockets until the relay tore it down; the kernel frees it in the background.
    let left = (await suite.lab.run('router', ['ss', '-Huan'])).stdout.trim();
    for (let i = 0; i < 40 && left !== ''; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = (await suite.lab.run('router', ['ss', '-Huan'])).stdout.trim();
    }
    assert.equal(left, '', left);
    relay.child.stdin?.write('exit\n');
    assert.equal(await relay.exited, 0);
  });
});

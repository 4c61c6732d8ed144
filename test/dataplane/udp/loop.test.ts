// The UDP relay loop over a fake kernel (test/helpers/fake-udp-kernel.ts): datagrams in the orders
// the real kernel produces only by chance under load.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IDLE_WAIT_MAX_MS } from '../../../src/core/net/constants.js';
import type { Endpoint } from '../../../src/core/net/sockaddr.js';
import type { RoutingConfig } from '../../../src/core/route/config.js';
import { createCounterBuffer, routedLayoutOf, snapshotCounters, type UdpCounters } from '../../../src/dataplane/udp/counters.js';
import { UdpLoop } from '../../../src/dataplane/udp/loop.js';
import type { ProxyEvent } from '../../../src/dataplane/events.js';
import { DescriptorBudget } from '../../../src/sys/descriptor-budget.js';
import { FakeUdpKernel, type FakeSocket } from '../../helpers/fake-udp-kernel.js';
import { UDP_ENGINE_CHOICES, type UdpEngineKind } from '../../../src/sys/datagram-io.js';

const SERVER: Endpoint = { family: 4, address: '203.0.113.20', port: 80 };
const A: Endpoint = { family: 4, address: '198.51.100.10', port: 40_001 };
const B: Endpoint = { family: 4, address: '198.51.100.11', port: 40_002 };
const ROUTING: RoutingConfig = { listener: 'main', defaultOutbound: { name: 'direct', kind: 'direct' }, outbounds: [], lists: [], routes: [] };
const same = (x: Endpoint | undefined, y: Endpoint): boolean => x?.address === y.address && x.port === y.port;

function setup(
  engine: UdpEngineKind,
  afterReplyBind?: (kernel: FakeUdpKernel) => void,
  refuseUring?: Error,
  budget = DescriptorBudget.create({ limit: 1000, open: 0 }),
): { kernel: FakeUdpKernel; loop: UdpLoop; turn: (timeoutMs: number) => void; listener: number; counters: () => UdpCounters; events: ProxyEvent[]; clock: { now: number } } {
  const clock = { now: 1000 };
  const kernel = new FakeUdpKernel();
  kernel.refuseUring = refuseUring;
  const listener = kernel.listener({ family: 4, address: '0.0.0.0', port: 8000 });
  const layout = routedLayoutOf(ROUTING);
  const slots = new Float64Array(createCounterBuffer(layout));
  const events: ProxyEvent[] = [];
  const loop = new UdpLoop(
    { routing: ROUTING, upstreamMark: 2, mapping: 'endpoint-dependent', idleTimeoutMs: 5000, maxSessions: 100, maxPeersPerSession: 8, maxDatagramBytes: 2048, receiveBufferBytes: 65_536, batchSize: 8, headers: {}, engine },
    [listener],
    {
      api: kernel.api(),
      counters: slots,
      emit: (e) => events.push(e),
      localAddresses: () => new Set(),
      now: () => clock.now,
      flowEvents: () => true,
      budget,
      ...(afterReplyBind ? { testSeam: { afterReplyBind: () => afterReplyBind(kernel) } } : {}),
    },
  );
  // A turn, and what its sends become in the kernel: the uring engine's queued sends go out with
  // the next io_uring_enter, which the next turn would make at once.
  const turn = loop.runOnce.bind(loop);
  loop.runOnce = (timeoutMs: number): void => {
    turn(timeoutMs);
    kernel.submitQueued();
  };
  return { kernel, loop, turn, listener, counters: () => snapshotCounters(slots, layout), events, clock };
}

/** The reply socket of `client`'s flow to SERVER (bound to the server, connected to the client). */
function replySocket(kernel: FakeUdpKernel, client: Endpoint): FakeSocket {
  const [s] = kernel.find((x) => same(x.bound, SERVER) && same(x.connected, client));
  assert.ok(s, `a reply socket for ${client.address}:${client.port}`);
  return s;
}

/** The upstream sockets (connected to SERVER) and the payloads each sent. */
function upstreamPayloads(kernel: FakeUdpKernel): string[][] {
  return kernel.find((x) => same(x.connected, SERVER)).map((x) => x.sent.map((d) => d.data));
}

describe('UDP relay loop wake-ups (fake kernel, epoll engine)', () => {
  it('arms no wake-up while idle: the longest wait without sessions, the next sweep while one exists, none again once it expired', () => {
    const { kernel, loop, listener, clock, counters } = setup('epoll');
    assert.equal(loop.waitMs(), IDLE_WAIT_MAX_MS, 'a loop without sessions blocks until traffic or its owner wakes it (a second at most)');
    assert.ok(IDLE_WAIT_MAX_MS >= 1000);
    loop.runOnce(0);
    assert.equal(loop.waitMs(), IDLE_WAIT_MAX_MS, 'a turn with nothing to do arms nothing sooner');
    kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
    loop.runOnce(0);
    // The idle timeout is 5000 ms: sweeps every tenth of it; the first was due at the first turn (clock 1000).
    assert.equal(loop.waitMs(), 500);
    clock.now += 200;
    assert.equal(loop.waitMs(), 300, 'the sweep stays where it was: waiting shortens the wait');
    clock.now += 5000 + 1; // past the idle timeout
    loop.runOnce(0);
    assert.equal(counters().sessionsExpired, 1);
    assert.equal(loop.waitMs(), IDLE_WAIT_MAX_MS, 'the last session expired: nothing timed any more');
  });

  it('an owner\'s wake-up ends a wait and is reported once (takeWoken), its eventfd drained', () => {
    const clock = { now: 1000 };
    const kernel = new FakeUdpKernel();
    const listener = kernel.listener({ family: 4, address: '0.0.0.0', port: 8000 });
    const wakeFd = kernel.listener({ family: 4, address: '127.0.0.1', port: 1 });
    const layout = routedLayoutOf(ROUTING);
    let drained = 0;
    const loop = new UdpLoop(
      { routing: ROUTING, upstreamMark: 2, mapping: 'endpoint-dependent', idleTimeoutMs: 5000, maxSessions: 100, maxPeersPerSession: 8, maxDatagramBytes: 2048, receiveBufferBytes: 65_536, batchSize: 8, headers: {}, engine: 'epoll' },
      [listener],
      {
        api: kernel.api(),
        counters: new Float64Array(createCounterBuffer(layout)),
        emit: () => undefined,
        localAddresses: () => new Set(),
        now: () => clock.now,
        flowEvents: () => true,
        budget: DescriptorBudget.create({ limit: 1000, open: 0 }),
        wake: { fd: wakeFd, drain: () => void (drained++, (kernel.get(wakeFd).queue.length = 0)) },
      },
    );
    loop.runOnce(0);
    assert.equal(loop.takeWoken(), false);
    kernel.deliver(wakeFd, { source: A, destination: SERVER, data: 'wake' });
    loop.runOnce(-1);
    assert.equal(drained, 1);
    assert.equal(loop.takeWoken(), true, 'the thread goes back to its event loop to take the message');
    assert.equal(loop.takeWoken(), false, 'once');
    assert.equal(kernel.find((x) => same(x.connected, SERVER)).length, 0, 'a wake-up is no datagram: no session opened');
  });
});

for (const engine of UDP_ENGINE_CHOICES) describe(`UDP relay loop (fake kernel, ${engine} engine)`, () => {
  it('relays the first datagram of a flow through a new session: an upstream socket and a reply socket', () => {
    const { kernel, loop, listener } = setup(engine);
    kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
    loop.runOnce(0);
    assert.deepEqual(upstreamPayloads(kernel), [['a1']]);
    const reply = replySocket(kernel, A);
    assert.equal(reply.options.transparent, true);
    // The server's answer goes back through the reply socket, to the client.
    const [upstream] = kernel.find((x) => same(x.connected, SERVER));
    kernel.deliver(upstream!.fd, { source: SERVER, destination: upstream!.bound!, data: 'echo a1' });
    loop.runOnce(0);
    assert.deepEqual(reply.sent, [{ data: 'echo a1', to: A }]);
  });

  it('hands a datagram queued on a new reply socket before connect() to its own flow (the drain)', () => {
    let once = true;
    const { kernel, loop, listener, counters } = setup(engine, (k) => {
      if (!once) return;
      once = false;
      // Between bind() and connect(): B's datagram to the same server reaches A's new reply socket.
      const [unconnected] = k.find((x) => same(x.bound, SERVER) && x.connected === undefined);
      k.deliver(unconnected!.fd, { source: B, destination: SERVER, data: 'b1' });
    });
    kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
    loop.runOnce(0);
    assert.deepEqual(upstreamPayloads(kernel).sort(), [['a1'], ['b1']]);
    replySocket(kernel, B);
    assert.equal(counters().raceHandovers, 1);
  });

  it('hands another client\'s datagram that reaches a connected reply socket after the drain to that client\'s own flow, never to this one', () => {
    // The kernel looked A's reply socket up for B's datagram while it was unconnected, and queued
    // it after the loop's drain: seen under load with bursts of new flows (the soak's lost round trips).
    const { kernel, loop, listener, counters } = setup(engine);
    kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
    loop.runOnce(0);
    const replyA = replySocket(kernel, A);
    kernel.deliver(replyA.fd, { source: B, destination: SERVER, data: 'b1' });
    loop.runOnce(0);
    const sessions = upstreamPayloads(kernel).sort();
    assert.deepEqual(sessions, [['a1'], ['b1']], 'B\'s datagram went up through a session of its own, not A\'s');
    assert.equal(counters().errors['foreign-source'], 0);
    assert.equal(counters().raceHandovers, 1);
    // B's flow is whole: the server's answer reaches B from the server's address and port.
    const [upstreamB] = kernel.find((x) => same(x.connected, SERVER) && x.sent.some((d) => d.data === 'b1'));
    kernel.deliver(upstreamB!.fd, { source: SERVER, destination: upstreamB!.bound!, data: 'echo b1' });
    loop.runOnce(0);
    assert.deepEqual(replySocket(kernel, B).sent, [{ data: 'echo b1', to: B }]);
    assert.deepEqual(replyA.sent, [], 'nothing of B\'s went to A');
  });

  it('keeps an idle session whose client\'s datagram arrived during the turn that would expire it, and relays that datagram', () => {
    const { kernel, loop, listener, counters, clock } = setup(engine);
    kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
    loop.runOnce(0);
    const replyA = replySocket(kernel, A);
    clock.now += 5000 + 1; // past the idle timeout
    // After epoll_wait returned, before the idle sweep: the client's next datagram is queued.
    kernel.afterNextWait = () => kernel.deliver(replyA.fd, { source: A, destination: SERVER, data: 'a2' });
    loop.runOnce(0);
    loop.runOnce(0);
    assert.deepEqual(upstreamPayloads(kernel), [['a1', 'a2']], 'a2 went up through the same session');
    assert.equal(counters().sessionsExpired, 0);
    // Idle for real now: it expires.
    clock.now += 5000 + 1;
    loop.runOnce(0);
    assert.equal(counters().sessionsExpired, 1);
    assert.equal(kernel.find((x) => same(x.bound, SERVER)).length, 0, 'its sockets are closed');
  });

  it('drops a reply the client side has no room for (counted, the session stays) and ends the session when the client\'s port is gone, whether the send fails at once or a turn later', () => {
    const { kernel, loop, listener, counters, events } = setup(engine);
    kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
    loop.runOnce(0);
    const replyA = replySocket(kernel, A);
    const [upstream] = kernel.find((x) => same(x.connected, SERVER));
    kernel.refuseSends(replyA.fd, 11); // EAGAIN: the client's socket buffer is full
    kernel.deliver(upstream!.fd, { source: SERVER, destination: upstream!.bound!, data: 'echo a1' });
    loop.runOnce(0);
    loop.runOnce(0);
    assert.equal(counters().errors['client-busy'], 1);
    assert.equal(counters().sessionsActive, 1, 'a full buffer drops the datagram, not the session');
    kernel.refuseSends(replyA.fd, 111); // ECONNREFUSED: the client's port is gone
    kernel.deliver(upstream!.fd, { source: SERVER, destination: upstream!.bound!, data: 'echo a1 again' });
    loop.runOnce(0);
    loop.runOnce(0);
    assert.equal(counters().errors['client-refused'], 1);
    assert.equal(counters().sessionsActive, 0);
    const closed = events.find((e) => e.type === 'udp.session.close');
    assert.ok(closed && closed.type === 'udp.session.close' && closed.reason === 'ECONNREFUSED');
    assert.equal(kernel.find((x) => same(x.bound, SERVER) || same(x.connected, SERVER)).length, 0, 'its sockets are closed');
  });

  it('sends what a turn queued before a session\'s sockets close, and nothing on them afterwards', () => {
    const { kernel, loop, turn, listener, counters } = setup(engine);
    kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
    loop.runOnce(0);
    const replyA = replySocket(kernel, A);
    const [upstream] = kernel.find((x) => same(x.connected, SERVER));
    kernel.deliver(replyA.fd, { source: A, destination: SERVER, data: 'a2' });
    kernel.deliver(upstream!.fd, { source: SERVER, destination: upstream!.bound!, data: 'echo a1' });
    // The operator closes the session right after the turn that relayed a2 and the answer (with
    // uring, before the next io_uring_enter would have sent them).
    turn(0);
    assert.equal(counters().datagramsFromServers, 1);
    const [session] = loop.sessionSnapshot(1);
    assert.equal(loop.closeSession(session!.id), true);
    loop.runOnce(0);
    assert.deepEqual(upstream!.sent.map((d) => d.data), ['a1', 'a2']);
    assert.deepEqual(replyA.sent, [{ data: 'echo a1', to: A }]);
    assert.ok(upstream!.closed && replyA.closed);
  });

  it('lists sessions in progress with their bytes now, busiest first and bounded, and an operator closes one by id', () => {
    const { kernel, loop, listener, counters, events, clock } = setup(engine);
    kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
    kernel.deliver(listener, { source: B, destination: SERVER, data: 'b-longer' });
    loop.runOnce(0);
    const [upstreamA] = kernel.find((x) => same(x.connected, SERVER) && x.sent.some((d) => d.data === 'a1'));
    kernel.deliver(upstreamA!.fd, { source: SERVER, destination: upstreamA!.bound!, data: 'echo a1 echo a1' });
    loop.runOnce(0);
    clock.now += 40;
    const all = loop.sessionSnapshot(10);
    assert.deepEqual(all.map((x) => [x.client.port, x.bytesFromClient, x.bytesFromServer, x.datagramsFromServer]), [[A.port, 2, 15, 1], [B.port, 8, 0, 0]], 'bytes each way while they live, busiest first');
    assert.equal(all[0]!.idleMs, 40);
    assert.deepEqual(loop.sessionSnapshot(1).map((x) => x.client.port), [A.port], 'bounded');
    assert.equal(loop.closeSession(all[0]!.id), true);
    assert.equal(loop.closeSession(all[0]!.id), false, 'not twice');
    assert.equal(loop.closeSession(9999), false);
    const closed = events.find((e) => e.type === 'udp.session.close');
    assert.ok(closed && closed.type === 'udp.session.close');
    assert.equal(closed.reason, 'closed-by-operator');
    assert.equal(closed.bytesFromServer, 15);
    assert.equal(counters().sessionsClosedByOperator, 1);
    assert.equal(counters().sessionsActive, 1);
    assert.deepEqual(loop.sessionSnapshot(10).map((x) => x.client.port), [B.port]);
    assert.equal(kernel.find((x) => same(x.connected, A)).length, 0, "A's reply socket is closed");
  });
});

describe('UDP relay loop: a uring ring that cannot be set up', () => {
  it('runs the loop on epoll and says why to its owner, which logs the one udp.engine line (the loop logs none)', () => {
    const { kernel, loop, listener, events } = setup('uring', undefined, new Error('io_uring_register(IORING_REGISTER_PBUF_RING) failed with ENOMEM'));
    assert.deepEqual(loop.engine, { engine: 'epoll', fallback: 'the io_uring ring could not be set up (io_uring_register(IORING_REGISTER_PBUF_RING) failed with ENOMEM): the epoll engine runs instead' });
    assert.deepEqual(events.filter((e) => e.type === 'udp.engine'), []);
    assert.deepEqual(setup('uring').loop.engine, { engine: 'uring' }, 'a ring set up: uring runs');
    kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
    loop.runOnce(0);
    assert.deepEqual(upstreamPayloads(kernel), [['a1']], 'relayed on epoll');
  });
});

describe('UDP relay loop: its engine\'s own descriptors in the budget', () => {
  const udpInUse = (budget: DescriptorBudget): number => budget.snapshot().byConsumer.udp.inUse;
  for (const [engine, refuse, held, what] of [
    ['epoll', undefined, 1, 'the epoll engine: its epoll'],
    ['uring', undefined, 2, 'the uring engine: its ring and the epoll it polls'],
    ['uring', new Error('io_uring_register(IORING_REGISTER_PBUF_RING) failed with ENOMEM'), 1, 'uring asked for, its ring refused: the epoll engine\'s one, the ring\'s given back'],
  ] as const) {
    it(`${what}: ${held} held while it runs, given back at shutdown`, () => {
      const budget = DescriptorBudget.create({ limit: 1000, open: 0 });
      const { kernel, loop, listener } = setup(engine, undefined, refuse, budget);
      assert.equal(udpInUse(budget), held);
      kernel.deliver(listener, { source: A, destination: SERVER, data: 'a1' });
      loop.runOnce(0);
      assert.equal(udpInUse(budget), held + 2, 'and a session\'s two sockets');
      loop.shutdown();
      assert.equal(udpInUse(budget), 0);
    });
  }

  it('a budget without room for them refuses the loop, saying which limit to raise, and holds nothing', () => {
    // Capacity 2 (limit - open - slack), all but one kept for child processes and the stop.
    const budget = DescriptorBudget.create({ limit: 2, open: 0, slack: 0, childReserve: 1, stopReserve: 0 });
    assert.throws(() => setup('uring', undefined, undefined, budget), (error: Error & { code?: string }) => error.code === 'ERR_RESOURCE_EXHAUSTED' && /the uring engine's 2 descriptors \(1 left of 2\): raise the descriptor limit/.test(error.message));
    assert.equal(udpInUse(budget), 0);
    assert.equal(budget.snapshot().byConsumer.udp.refused, 1);
  });
});

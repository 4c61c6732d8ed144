// The UDP mmproxy relay and the descriptor budget (no privileges: loopback, and no session socket
// is ever opened): its listening sockets, its epoll and its wake-up eventfd take their descriptors from the budget when
// it starts and give them back when it stops; a budget that cannot hold them refuses the start with
// a clear error and nothing opened; a session the budget cannot hold is dropped and counted.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { TproxyError } from '../../../src/core/errors.js';
import { encodeProxyHeaderV2 } from '../../../src/core/proxy-protocol/v2.js';
import { MmproxyUdpRelay, type MmproxyUdpConfig } from '../../../src/dataplane/mmproxy/udp-relay.js';
import { DescriptorBudget } from '../../../src/sys/descriptor-budget.js';
import { SocketApi } from '../../../src/sys/socket.js';

/** A budget of exactly `capacity` descriptors for the data plane (no slack, no reserves). */
const budgetOf = (capacity: number): DescriptorBudget => DescriptorBudget.create({ limit: capacity, open: 0, slack: 0, childReserve: 0, stopReserve: 0 });

async function freePorts(n: number): Promise<number[]> {
  const sockets = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
      return s;
    }),
  );
  const ports = sockets.map((s) => s.address().port);
  for (const s of sockets) s.close();
  return ports;
}

/** Whether 127.0.0.1:port can be bound now (nobody holds it). */
async function bindable(port: number): Promise<boolean> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => {
      s.close();
      resolve(true);
    });
  });
}

const config = (ports: readonly number[]): MmproxyUdpConfig => ({
  name: 'dns',
  listen: ports.map((port) => ({ address: '127.0.0.1', port })),
  allowedSources: ['127.0.0.0/8'],
  backend4: { address: '127.0.0.1', port: 9 },
  maxHeaderBytes: 512,
  upstreamMark: 2,
  idleTimeoutMs: 0,
  maxSessions: 16,
});

describe('mmproxy UDP relay: the descriptor budget', () => {
  it('holds one descriptor per listening socket and one for its epoll while it runs, and gives them back at stop', async () => {
    const budget = budgetOf(10);
    const relay = new MmproxyUdpRelay(config(await freePorts(2)), { sockets: new SocketApi(), budget });
    relay.start();
    try {
      assert.equal(budget.snapshot().byConsumer.mmproxy.inUse, 4);
      assert.equal(budget.available('mmproxy'), 6);
    } finally {
      await relay.stop();
    }
    assert.equal(budget.snapshot().byConsumer.mmproxy.inUse, 0);
    assert.equal(budget.snapshot().inUse, 0);
  });

  it('refuses to start when the budget cannot hold them: a clear error, nothing opened, nothing held', async () => {
    const ports = await freePorts(2);
    const budget = budgetOf(5);
    assert.ok(budget.acquire('udp', 3), 'another consumer holds 3 of the 5');
    const relay = new MmproxyUdpRelay(config(ports), { sockets: new SocketApi(), budget });
    assert.throws(
      () => relay.start(),
      (error: unknown) => {
        assert.ok(error instanceof TproxyError);
        assert.equal(error.code, 'ERR_RESOURCE_EXHAUSTED');
        assert.match(error.message, /^mmproxy dns: the descriptor budget cannot hold its 4 descriptors \(2 listening sockets, its epoll and its wake-up eventfd\): 2 left of 5 .*raise the descriptor limit \(LimitNOFILE= in the systemd unit, ulimit -n\)$/);
        return true;
      },
    );
    for (const port of ports) assert.ok(await bindable(port), `127.0.0.1:${port} was not bound`);
    assert.deepEqual(budget.snapshot().byConsumer.mmproxy, { inUse: 0, refused: 1 });
    assert.equal(budget.snapshot().inUse, 3, 'only the other consumer\'s');
    await relay.stop();
    assert.equal(budget.snapshot().inUse, 3, 'a stop after a refused start gives back nothing it did not take');
  });

  it('gives back what it took when a bind fails after the budget was asked', async () => {
    const [free, taken] = await freePorts(2);
    const holder = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => holder.bind(taken, '127.0.0.1', resolve));
    try {
      const budget = budgetOf(10);
      // The listener uses SO_REUSEADDR: a socket without it (the holder) still makes the bind fail.
      const relay = new MmproxyUdpRelay(config([free!, taken!]), { sockets: new SocketApi(), budget });
      assert.throws(() => relay.start());
      assert.equal(budget.snapshot().inUse, 0);
      assert.ok(await bindable(free!));
    } finally {
      holder.close();
    }
  });

  it('a session the budget cannot hold once the listeners took theirs is dropped and counted (descriptor-budget)', async () => {
    const [port] = await freePorts(1);
    const budget = budgetOf(3);
    const relay = new MmproxyUdpRelay(config([port!]), { sockets: new SocketApi(), budget });
    relay.start();
    const sender = dgram.createSocket('udp4');
    try {
      const header = encodeProxyHeaderV2({ command: 'proxy', transport: 'udp', addresses: { source: { family: 4, address: '192.0.2.10', port: 40_000 }, destination: { family: 4, address: '127.0.0.1', port: 9 } } });
      await new Promise<void>((resolve, reject) => sender.send(Buffer.concat([header, Buffer.from('x')]), port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
      const deadline = Date.now() + 5000;
      while (relay.counters.rejected['descriptor-budget'] !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(relay.counters.rejected['descriptor-budget'], 1, JSON.stringify(relay.counters));
      assert.equal(relay.sessionCount, 0);
      assert.equal(relay.counters.headersProxy, 1);
    } finally {
      sender.close();
      await relay.stop();
    }
    assert.equal(budget.snapshot().inUse, 0);
  });
});

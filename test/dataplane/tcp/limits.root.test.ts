// Connection caps: accepting pauses (the kernel backlog holds new connections) instead of failing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { startProxyLab, type LogLine, type ProxyLab } from '../../helpers/proxy-lab.js';

describe('TCP connection limits (root)', () => {
  let p: ProxyLab;
  before(async () => {
    // A descriptor limit of 256 leaves room for (256 - 64) / 6 = 32 splice flows per worker.
    p = await startProxyLab(['--intercept', 'tcp:81', '--workers', '1', '--max-connections', '1000', '--table', 'tproxy_limit'], 81, ['prlimit', '--nofile=256:256']);
  });
  after(() => p.lab.destroy());

  it('lowers the cap to fit the descriptor limit', () => {
    const ready = p.logs.find((l) => l.type === 'ready') as LogLine & { maxConnectionsPerWorker: number };
    assert.equal(ready.maxConnectionsPerWorker, 32);
  });

  it('serves 160 concurrent connections through a cap of 32: 32 at a time, the rest wait, none dropped', async () => {
    // The server answers only when 32 connections are open at once: each batch proves the proxy
    // held exactly its cap, and the next batch proves the waiting connections were kept.
    const r = await p.client<{ ok: number; failures: string[] }>('gated', LAB_ADDRESSES.server.ipv4, 81, 160, 32);
    assert.deepEqual(r.failures, []);
    assert.equal(r.ok, 160);
    const gates = p.serverLog.items.filter((l) => l.event === 'gate');
    assert.deepEqual(gates.map((g) => g.released), [32, 32, 32, 32, 32]);
    p.proxy.child.kill('SIGTERM');
    await p.proxy.exited;
    await p.logs.closed();
    const stopped = p.logs.find((l) => l.type === 'stopped') as LogLine & { counters: { tcp: { accepted: number; acceptPauses: number; connectErrors: Record<string, number> } } };
    assert.equal(stopped.counters.tcp.accepted, 160);
    assert.ok(stopped.counters.tcp.acceptPauses >= 1, 'accepting paused at the cap');
    assert.equal(stopped.counters.tcp.connectErrors.EMFILE, undefined, 'never ran out of descriptors');
  });
});

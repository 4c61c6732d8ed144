// Connection caps: accepting pauses (the kernel backlog holds new connections) instead of failing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { startProxyLab, type LogLine, type ProxyLab } from '../../helpers/proxy-lab.js';

describe('TCP connection limits (root)', () => {
  let p: ProxyLab;
  before(async () => {
    // A descriptor limit of 256 leaves room for (256 - open at start - 64 slack) / 6 splice flows per worker.
    p = await startProxyLab(['--intercept', 'tcp:81', '--workers', '1', '--max-connections', '1000', '--table', 'tproxy_limit'], 81, ['prlimit', '--nofile=256:256']);
  });
  after(() => p.lab.destroy());

  const cap = (): number => (p.logs.find((l) => l.type === 'ready') as LogLine & { maxConnectionsPerWorker: number }).maxConnectionsPerWorker;

  it('lowers the cap to fit the descriptor limit', () => {
    // At most (256 - 64) / 6 = 32; the descriptors the worker has open at start come off that.
    assert.ok(cap() >= 20 && cap() <= 32, `cap ${cap()}`);
  });

  it('serves five times its cap of concurrent connections: a cap at a time, the rest wait, none dropped', async () => {
    // The server answers only when `cap` connections are open at once: each batch proves the proxy
    // held exactly its cap, and the next batch proves the waiting connections were kept.
    const r = await p.client<{ ok: number; failures: string[] }>('gated', LAB_ADDRESSES.server.ipv4, 81, 5 * cap(), cap());
    assert.deepEqual(r.failures, []);
    assert.equal(r.ok, 5 * cap());
    const gates = p.serverLog.items.filter((l) => l.event === 'gate');
    assert.deepEqual(gates.map((g) => g.released), [cap(), cap(), cap(), cap(), cap()]);
    p.proxy.child.kill('SIGTERM');
    await p.proxy.exited;
    await p.logs.closed();
    const stopped = p.logs.find((l) => l.type === 'stopped') as LogLine & { counters: { tcp: { accepted: number; acceptPauses: number; connectErrors: Record<string, number> } } };
    assert.equal(stopped.counters.tcp.accepted, 5 * cap());
    assert.ok(stopped.counters.tcp.acceptPauses >= 1, 'accepting paused at the cap');
    assert.equal(stopped.counters.tcp.connectErrors.EMFILE, undefined, 'never ran out of descriptors');
  });
});

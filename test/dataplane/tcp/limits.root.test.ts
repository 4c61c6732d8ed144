// Connection caps: accepting pauses (the kernel backlog holds new connections) instead of failing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { startProxyLab, type LogLine, type ProxyLab } from '../../helpers/proxy-lab.js';

// splice (at caps this small 6 descriptors per flow: two sockets and two shared pipes per flow, up
// to 64 pipes) and uring (2: its accept pauses by cancelling a multishot accept).
for (const engine of ['splice', 'uring'] as const) describe(`TCP connection limits, ${engine} engine (root)`, () => {
  let p: ProxyLab;
  const perFlow = engine === 'splice' ? 6 : 2;
  before(async () => {
    // A descriptor limit of 256 leaves room for (256 - open at start - 64 slack) / perFlow flows per worker.
    p = await startProxyLab(['--intercept', 'tcp:81', '--workers', '1', '--tcp-engine', engine, '--max-connections', '1000', '--table', 'tproxy_limit'], 81, ['prlimit', '--nofile=256:256']);
  });
  after(() => p.lab.destroy());

  const cap = (): number => (p.logs.find((l) => l.type === 'ready') as LogLine & { maxConnectionsPerWorker: number }).maxConnectionsPerWorker;

  it('lowers the cap to fit the descriptor limit', () => {
    // At most (256 - 64) / perFlow (32 for splice); the descriptors the worker has open at start
    // (up to 72) come off that.
    assert.ok(cap() >= Math.floor((192 - 72) / perFlow) && cap() <= Math.floor(192 / perFlow), `cap ${cap()}`);
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

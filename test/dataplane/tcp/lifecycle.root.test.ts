// The TCP relay's lifecycle: graceful stop with flows in progress, a crashed worker replaced.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { normalizeAddress } from '../../../src/core/net/sockaddr.js';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { startProxyLab, type LogLine, type ProxyLab } from '../../helpers/proxy-lab.js';
import { TCP_PEER } from '../../helpers/paths.js';

// The default engine (splice), and uring (its own stop: cancelled accepts, then a drain).
for (const engine of ['splice', 'uring'] as const) describe(`TCP relay lifecycle, ${engine} engine (root)`, () => {
  let p: ProxyLab;
  before(async () => {
    p = await startProxyLab(['--intercept', 'tcp:81', '--workers', '2', '--tcp-engine', engine, '--grace-ms', '8000', '--table', 'tproxy_life']);
  });
  after(() => p.lab.destroy());

  it('replaces a crashed worker and keeps relaying', async () => {
    const ready = p.logs.find((l) => l.type === 'ready') as LogLine & { tcpWorkers: number[] };
    assert.equal(ready.tcpWorkers.length, 2);
    const victim = ready.tcpWorkers[0] ?? -1;
    process.kill(victim, 'SIGKILL');
    const exit = await p.logs.waitFor((l) => l.type === 'worker.exit' && l.pid === victim, 5000, 'the supervisor noticing the crash');
    assert.equal(exit.restarting, true);
    assert.equal(exit.signal, 'SIGKILL');
    await p.logs.waitFor((l) => l.type === 'worker.start' && (l.restart as number) >= 1, 5000, 'a replacement worker');
    for (let i = 0; i < 6; i++) {
      const r = await p.client<{ how: string; seen: { address: string } }>('peer', LAB_ADDRESSES.server.ipv4, 81);
      assert.equal(r.how, 'end', `connection ${i} after the restart`);
    }
  });

  it('on SIGTERM stops accepting, lets a flow in progress finish, resets one that does not', async () => {
    // A transfer that lasts about 2 s (in progress when the stop begins) and a held connection
    // that never ends on its own.
    const slow = p.lab.run('client', [process.execPath, TCP_PEER, 'client', 'trickle', LAB_ADDRESSES.server.ipv6, '81', '40'], { timeoutMs: 60_000 });
    const held = p.lab.run('client', [process.execPath, TCP_PEER, 'client', 'hold', LAB_ADDRESSES.server.ipv4, '81', '30000'], { timeoutMs: 60_000 });
    await p.serverLog.waitFor((l) => l.event === 'command' && (l as { command?: string }).command === 'HOLD', 10_000, 'the held connection reaching the server');
    await p.serverLog.waitFor((l) => l.event === 'command' && (l as { command?: string }).command === 'ECHO', 10_000, 'the transfer reaching the server');
    p.proxy.child.kill('SIGTERM');
    const bulk = JSON.parse((await slow).stdout) as { how: string; sentSha256: string; receivedSha256: string };
    assert.equal(bulk.how, 'end', 'the transfer in progress completed');
    assert.equal(bulk.receivedSha256, bulk.sentSha256);
    const hold = JSON.parse((await held).stdout) as { how: string };
    assert.equal(hold.how, 'reset', 'the flow still open at the deadline was reset, not silently closed');
    assert.equal(await p.proxy.exited, 0);
    await p.logs.closed();
    const stopped = p.logs.find((l) => l.type === 'stopped') as LogLine & { flowsCompleted: number; flowsReset: number; counters: { tcp: { accepted: number } } };
    assert.equal(stopped.flowsReset, 1);
    assert.ok(stopped.flowsCompleted >= 1);
    assert.ok(stopped.counters.tcp.accepted >= 8, 'counters survive the worker restart');
    // With the rules gone, traffic is routed as if tproxy had never been there.
    const after = await p.client<{ how: string; seen: { address: string } }>('peer', LAB_ADDRESSES.server.ipv4, 81);
    assert.equal(after.how, 'end');
    assert.equal(normalizeAddress(after.seen.address), LAB_ADDRESSES.client.ipv4, 'forwarded, not proxied');
  });
});

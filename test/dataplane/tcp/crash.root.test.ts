// A TCP worker killed (SIGKILL) under held flows: both peers of every flow see a reset, not a
// clean end of stream, and the supervisor counts the flows as lost (accepted = closed, summed).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { startProxyLab, type LogLine } from '../../helpers/proxy-lab.js';
import { TCP_PEER } from '../../helpers/paths.js';

const FLOWS = 4;

describe('a crashed TCP worker resets its flows (root)', () => {
  for (const engine of ['splice', 'stream', 'uring'] as const) {
    it(`${engine} engine: clients read ECONNRESET, the server sees resets, the lost flows are counted`, async () => {
      const p = await startProxyLab(['--intercept', 'tcp:81', '--workers', '1', '--tcp-engine', engine, '--grace-ms', '1000']);
      try {
        const ready = p.logs.find((l) => l.type === 'ready') as LogLine & { tcpWorkers: number[] };
        const victim = ready.tcpWorkers[0] ?? -1;
        // One flow that ended cleanly before the crash: it must stay a `done`, not become lost.
        const clean = await p.client<{ how: string }>('peer', LAB_ADDRESSES.server.ipv4, 81);
        assert.equal(clean.how, 'end');
        const held = Array.from({ length: FLOWS }, (_, i) =>
          p.lab.run('client', [process.execPath, TCP_PEER, 'client', 'hold', i % 2 === 0 ? LAB_ADDRESSES.server.ipv4 : LAB_ADDRESSES.server.ipv6, '81', '30000'], { timeoutMs: 60_000 }),
        );
        for (let i = 1; i <= FLOWS; i++) {
          await p.serverLog.waitFor((l) => l.event === 'command' && (l as { command?: string }).command === 'HOLD' && p.serverLog.text.filter((t) => t.includes('"HOLD"')).length >= i, 10_000, `held flow ${i} reaching the server`);
        }
        // The worker reports its counters every second: let one report include the held flows.
        await new Promise((r) => setTimeout(r, 2500));
        process.kill(victim, 'SIGKILL');
        for (const run of held) {
          const result = JSON.parse((await run).stdout.trim().split('\n').pop() ?? '{}') as { how: string; reply: string };
          assert.equal(result.reply, 'OK\n', 'the flow was through before the crash');
          assert.equal(result.how, 'reset', 'the client reads a reset, not a clean end of stream');
        }
        for (let i = 1; i <= FLOWS; i++) {
          await p.serverLog.waitFor((l) => l.event === 'closed' && p.serverLog.text.filter((t) => t.includes('"closed"') && t.includes('"how":"reset"')).length >= i, 10_000, `server side of flow ${i} ending`);
        }
        const serverEnds = p.serverLog.text.filter((t) => t.includes('"closed"')).map((t) => (JSON.parse(t) as { how: string }).how);
        assert.deepEqual(serverEnds, ['end', ...Array<string>(FLOWS).fill('reset')], 'the clean flow ended with a FIN, the held ones with resets');
        const exit = await p.logs.waitFor((l) => l.type === 'worker.exit' && l.pid === victim, 5000, 'the supervisor noticing the crash');
        assert.equal(exit.lostFlows, FLOWS);
        // With one worker, nothing but the restart keeps the daemon going meanwhile.
        await p.logs.waitFor((l) => l.type === 'worker.start' && (l.restart as number) >= 1, 10_000, 'a replacement worker');
        p.proxy.child.kill('SIGTERM');
        assert.equal(await p.proxy.exited, 0);
        await p.logs.closed();
        const stopped = p.logs.find((l) => l.type === 'stopped') as LogLine & { counters: { tcp: { accepted: number; active: number; closed: Record<string, number> } } };
        const { tcp } = stopped.counters;
        assert.equal(tcp.accepted, FLOWS + 1);
        assert.deepEqual(tcp.closed, { done: 1, 'worker-lost': FLOWS });
        assert.equal(tcp.active, 0);
      } finally {
        await p.lab.destroy();
      }
    });
  }
});

// The dashboard's timers, counted with fake interval timers (no waiting): an idle daemon with the
// dashboard on and no page open arms the 1 s history tick only; the push of flow changes is armed
// while a page is connected and disarmed when the last one leaves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dashboard, type DashboardSource } from '../../../src/daemon/dashboard/dashboard.js';
import { FakeTimers } from '../../helpers/fake-dashboard-timers.js';
import type { DaemonStatus } from '../../../src/daemon/admin-protocol.js';
import { judgeReadiness } from '../../../src/daemon/readiness.js';
import { emptyTcpCounters } from '../../../src/dataplane/tcp/counters.js';

const STATUS = { state: 'running', pid: 1, version: 'test', node: 'v20', engine: 'splice', startedAt: '', uptimeSeconds: 0, listeners: [], rules: { managed: false }, flows: [] } as unknown as DaemonStatus;
const client = { family: 4 as const, address: '198.51.100.10', port: 40000 };
const dest = { family: 4 as const, address: '203.0.113.20', port: 443 };

function dashboard(status: () => Promise<DaemonStatus> = () => Promise.resolve(STATUS)): { dashboard: Dashboard; timers: FakeTimers } {
  const source: DashboardSource = {
    listeners: () => [
      {
        name: 'web',
        proxy: {
          counters: () => ({ tcp: emptyTcpCounters() }),
          snapshot: () => Promise.resolve({ flows: [] }),
          closeTcpFlow: () => Promise.resolve(false),
          udpSessions: () => Promise.resolve([]),
          closeUdpSession: () => Promise.resolve(false),
        },
      },
    ],
    status,
    explain: () => Promise.reject(new Error('not in this test')),
    reload: () => Promise.resolve(),
    readiness: () => Promise.resolve(judgeReadiness({ state: 'running', drained: false, rules: { managed: false }, listeners: [] })),
    drain: () => Promise.reject(new Error('not in this test')),
  };
  const timers = new FakeTimers();
  return { dashboard: new Dashboard(source, { pushEveryMs: 250, timers }), timers };
}

describe('dashboard timers (fake intervals)', () => {
  it('without pages only the 1 s tick is armed; a page arms the push, the last page leaving disarms it; stop disarms all', async () => {
    const { dashboard: d, timers } = dashboard();
    d.start();
    assert.deepEqual(timers.periods(), [1000], 'idle, no page: the history tick alone');
    d.sink({ type: 'tcp.accept', id: 1, pid: 50, client, originalDestination: dest, listener: 'web' });
    assert.deepEqual(timers.periods(), [1000], 'a flow without a page arms nothing');

    const sentA: string[] = [];
    const byeA = await d.connect({ send: (event) => sentA.push(event) });
    assert.deepEqual(timers.periods(), [250, 1000]);
    const byeB = await d.connect({ send: () => undefined });
    assert.deepEqual(timers.periods(), [250, 1000], 'one push for all pages');

    d.sink({ type: 'tcp.close', id: 1, pid: 50, client, originalDestination: dest, listener: 'web', reason: 'done', bytesFromClient: 1, bytesFromServer: 2, durationMs: 5 });
    timers.fire(250);
    assert.deepEqual(sentA, ['state', 'flows'], 'the armed push sends the change');

    byeA();
    assert.deepEqual(timers.periods(), [250, 1000], 'a page is still connected');
    byeB();
    assert.deepEqual(timers.periods(), [1000], 'the last page left: the push is disarmed');

    await d.connect({ send: () => undefined });
    assert.deepEqual(timers.periods(), [250, 1000], 'armed again by the next page');
    d.stop();
    assert.deepEqual(timers.periods(), []);
  });

  it('a page whose first state cannot be read leaves nothing armed for it', async () => {
    const { dashboard: d, timers } = dashboard(() => Promise.reject(new Error('status unreadable')));
    d.start();
    await assert.rejects(d.connect({ send: () => undefined }), /status unreadable/);
    assert.equal(d.connected, 0);
    assert.deepEqual(timers.periods(), [1000]);
    d.stop();
  });
});

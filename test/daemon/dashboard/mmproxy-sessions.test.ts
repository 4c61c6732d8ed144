// The sessions of mmproxy `protocol: udp` entries on the dashboard, with fake interval timers: their
// open and close events add and remove rows (keyed apart from the TPROXY listeners, which may share
// a name), their bytes rise with each second's snapshot while a page is open, and the close action
// ends one through the mmproxy entry, not through a TPROXY listener.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DaemonStatus } from '../../../src/daemon/admin-protocol.js';
import { Dashboard, type DashboardSource } from '../../../src/daemon/dashboard/dashboard.js';
import { FakeTimers } from '../../helpers/fake-dashboard-timers.js';
import { mmproxyUdpFlowKey, parseFlowKey, udpFlowKey, type FlowChange } from '../../../src/daemon/dashboard/flow-table.js';
import { judgeReadiness } from '../../../src/daemon/readiness.js';
import type { MmproxyUdpSessionSnapshot } from '../../../src/dataplane/mmproxy/udp-relay.js';
import { emptyTcpCounters } from '../../../src/dataplane/tcp/counters.js';

const STATUS = { state: 'running', pid: 1, version: 'test', node: 'v20', engine: 'splice', startedAt: '', uptimeSeconds: 0, listeners: [], rules: { managed: false }, flows: [] } as unknown as DaemonStatus;
const balancer = { family: 4 as const, address: '198.51.100.2', port: 5000 };
const client = { family: 4 as const, address: '192.0.2.10', port: 40000 };
const destination = { family: 4 as const, address: '203.0.113.53', port: 53 };
const backend = { family: 4 as const, address: '127.0.0.1', port: 5353 };

const snapshot = (bytes: number): MmproxyUdpSessionSnapshot => ({ id: 4, balancer, client, originalDestination: destination, backend, datagramsFromClient: 1, datagramsFromBackend: 1, bytesFromClient: bytes, bytesFromBackend: 2 * bytes, idleMs: 0 });

describe('dashboard: sessions of mmproxy UDP entries', () => {
  it('rows from the events, bytes from the snapshots, the close action through the entry', async () => {
    let bytes = 10;
    const closed: string[] = [];
    const tproxyClosed: number[] = [];
    const source: DashboardSource = {
      // A TPROXY listener of the same name as the mmproxy entry: its session 4 is another flow.
      listeners: () => [{ name: 'dns', proxy: { counters: () => ({ tcp: emptyTcpCounters() }), snapshot: () => Promise.resolve({ flows: [] }), closeTcpFlow: () => Promise.resolve(false), udpSessions: () => Promise.resolve([]), closeUdpSession: (id) => (tproxyClosed.push(id), Promise.resolve(true)) } }],
      status: () => Promise.resolve(STATUS),
      explain: () => Promise.reject(new Error('not in this test')),
      reload: () => Promise.resolve(),
      readiness: () => Promise.resolve(judgeReadiness({ state: 'running', drained: false, rules: { managed: false }, listeners: [] })),
      drain: () => Promise.reject(new Error('not in this test')),
      mmproxyUdpSessions: (limit) => {
        assert.equal(limit, 1000, 'bounded like the TPROXY snapshots');
        return [{ name: 'dns', sessions: closed.length > 0 ? [] : [snapshot(bytes)] }];
      },
      closeMmproxyUdpSession: (name, id) => {
        closed.push(`${name}/${id}`);
        return true;
      },
    };
    const timers = new FakeTimers();
    const d = new Dashboard(source, { pushEveryMs: 250, timers, now: () => 7000 });
    d.start();
    const sent: { event: string; data: unknown }[] = [];
    const bye = await d.connect({ send: (event, data) => sent.push({ event, data }) });

    d.sink({ type: 'mmproxy.udp.open', listener: 'dns', id: 4, balancer, client, originalDestination: destination, backend });
    const key = mmproxyUdpFlowKey('dns', 4);
    assert.notEqual(key, udpFlowKey('dns', 4));
    assert.deepEqual(parseFlowKey(key), { transport: 'udp', mmproxy: true, listener: 'dns', id: 4 });
    assert.deepEqual(d.table.get(key), { key, transport: 'udp', listener: 'dns', id: 4, client: '192.0.2.10:40000', originalDestination: '203.0.113.53:53', backend: '127.0.0.1:5353', balancer: '198.51.100.2:5000', bytesFromClient: 0, bytesFromServer: 0, startedAt: 7000 });
    assert.equal(d.table.opened, 1);

    // Each second with a page open: the entry's snapshot updates the row's bytes.
    timers.fire(1000);
    await new Promise((r) => setImmediate(r));
    bytes = 25;
    timers.fire(1000);
    await new Promise((r) => setImmediate(r));
    timers.fire(250);
    const changes = sent.filter((s) => s.event === 'flows').flatMap((s) => s.data as FlowChange[]);
    assert.deepEqual(changes.find((c) => c.op === 'add'), { op: 'add', flow: { ...d.table.get(key)!, bytesFromClient: 25, bytesFromServer: 50 } }, 'added, with the latest bytes merged in');
    assert.deepEqual({ up: d.table.get(key)?.bytesFromClient, down: d.table.get(key)?.bytesFromServer }, { up: 25, down: 50 });

    assert.deepEqual(await d.closeFlow(key), { ok: true, key });
    assert.deepEqual(closed, ['dns/4'], 'closed through the mmproxy entry');
    assert.deepEqual(tproxyClosed, [], 'not through the TPROXY listener of the same name');
    d.sink({ type: 'mmproxy.udp.close', listener: 'dns', id: 4, balancer, client, originalDestination: destination, backend, datagramsFromClient: 3, datagramsFromBackend: 3, bytesFromClient: 30, bytesFromBackend: 60, durationMs: 2000, reason: 'closed-by-operator' });
    assert.equal(d.table.get(key), undefined);
    assert.equal((await d.closeFlow(key)).ok, false, 'gone');
    bye();
    d.stop();
  });
});

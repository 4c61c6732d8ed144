// The dashboard's flow table: events in, changes out, bounded, keys that tell where a flow lives.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { coalesce, FlowTable, parseFlowKey, tcpFlowKey, udpFlowKey, type DashboardFlow } from '../../../src/daemon/dashboard/flow-table.js';
import type { DaemonEvent } from '../../../src/daemon/events.js';

const client = { family: 4 as const, address: '198.51.100.10', port: 40000 };
const dest = { family: 4 as const, address: '203.0.113.20', port: 443 };
const v6 = { family: 6 as const, address: '2001:db8:2::20', port: 53 };

describe('dashboard flow table', () => {
  it('follows a TCP flow from accept through route to close, keyed by listener, worker and id', () => {
    const table = new FlowTable(10, () => 1000);
    const add = table.apply({ type: 'tcp.accept', id: 7, pid: 321, client, originalDestination: dest, listener: 'web' });
    assert.deepEqual(add, { op: 'add', flow: { key: 'tcp/web/321/7', transport: 'tcp', listener: 'web', id: 7, pid: 321, client: '198.51.100.10:40000', originalDestination: '203.0.113.20:443', bytesFromClient: 0, bytesFromServer: 0, startedAt: 1000 } });
    assert.deepEqual(table.apply({ type: 'tcp.route', id: 7, pid: 321, originalDestination: dest, route: 'tls', outbound: 'direct', name: '<script>x</script>.example', listener: 'web' }), { op: 'update', key: 'tcp/web/321/7', fields: { route: 'tls', outbound: 'direct', name: '<script>x</script>.example' } });
    assert.deepEqual(table.updateBytes('web', [{ id: 7, pid: 321, client, originalDestination: dest, bytesFromClient: 10, bytesFromServer: 20, ageMs: 5, connected: true }]), [{ op: 'update', key: 'tcp/web/321/7', fields: { bytesFromClient: 10, bytesFromServer: 20 } }]);
    assert.deepEqual(table.updateBytes('web', [{ id: 7, pid: 321, client, originalDestination: dest, bytesFromClient: 10, bytesFromServer: 20, ageMs: 6, connected: true }]), [], 'no change, no update');
    // Same id in another worker is another flow.
    assert.equal(table.apply({ type: 'tcp.route', id: 7, pid: 999, originalDestination: dest, outbound: 'direct', listener: 'web' }), undefined);
    assert.deepEqual(table.apply({ type: 'tcp.close', id: 7, pid: 321, client, originalDestination: dest, bytesFromClient: 11, bytesFromServer: 22, durationMs: 9, reason: 'done', listener: 'web' }), { op: 'remove', key: 'tcp/web/321/7', reason: 'done', bytesFromClient: 11, bytesFromServer: 22 });
    assert.equal(table.size, 0);
    assert.equal(table.opened, 1);
  });

  it('UDP sessions with the unnamed listener (main), IPv6 endpoints in brackets', () => {
    const table = new FlowTable(10, () => 5);
    const add = table.apply({ type: 'udp.session.open', id: 3, client: { ...v6, address: '2001:db8:1::10', port: 5353 }, originalDestination: v6, upstreamLocal: v6, mapping: 'endpoint-dependent', outbound: 'direct' });
    assert.equal(add?.op === 'add' && add.flow.originalDestination, '[2001:db8:2::20]:53');
    assert.equal(add?.op === 'add' && add.flow.key, udpFlowKey('main', 3));
    assert.equal(table.apply({ type: 'udp.session.close', id: 3, client: v6, originalDestination: v6, datagramsFromClient: 1, datagramsFromServer: 1, bytesFromClient: 30, bytesFromServer: 60, reason: 'idle' })?.op, 'remove');
  });

  it('is bounded: past maxFlows new flows are counted as untracked, their later events ignored', () => {
    const table = new FlowTable(2);
    for (let id = 1; id <= 4; id++) table.apply({ type: 'tcp.accept', id, client, originalDestination: dest });
    assert.equal(table.size, 2);
    assert.equal(table.untracked, 2);
    assert.equal(table.opened, 4);
    assert.equal(table.apply({ type: 'tcp.close', id: 4, client, originalDestination: dest, bytesFromClient: 0, bytesFromServer: 0, durationMs: 0, reason: 'done' }), undefined);
  });

  it('drops the flows of a worker that died and of a listener that stopped', () => {
    const table = new FlowTable(10);
    const events: DaemonEvent[] = [
      { type: 'tcp.accept', id: 1, pid: 10, client, originalDestination: dest, listener: 'a' },
      { type: 'tcp.accept', id: 1, pid: 11, client, originalDestination: dest, listener: 'a' },
      { type: 'udp.session.open', id: 1, client, originalDestination: dest, upstreamLocal: dest, mapping: 'endpoint-dependent', listener: 'b' },
    ];
    for (const e of events) table.apply(e);
    assert.deepEqual(table.dropWorker('a', 10).map((c) => c.op === 'remove' && [c.key, c.reason]), [['tcp/a/10/1', 'worker-lost']]);
    assert.deepEqual(table.dropListener('b').map((c) => c.op === 'remove' && c.key), ['udp/b/1']);
    assert.deepEqual(table.list().map((f) => f.key), ['tcp/a/11/1']);
  });

  it('keys say where the flow is (listener names may hold slashes)', () => {
    assert.deepEqual(parseFlowKey(tcpFlowKey('w/eb', 5, 77)), { transport: 'tcp', listener: 'w/eb', pid: 77, id: 5 });
    assert.deepEqual(parseFlowKey(tcpFlowKey('web', 5, undefined)), { transport: 'tcp', listener: 'web', id: 5 });
    assert.deepEqual(parseFlowKey(udpFlowKey('dns', 9)), { transport: 'udp', listener: 'dns', id: 9 });
    for (const bad of ['', 'tcp/web/x/1', 'sctp/a/1', 'tcp/web/1', '../etc']) assert.equal(parseFlowKey(bad), undefined, bad);
  });

  it('a batch of changes goes out as its net effect: short flows left out, updates merged', () => {
    const flow = (key: string): DashboardFlow => ({ key, transport: 'tcp', listener: 'w', id: 1, client: 'c', originalDestination: 'd', bytesFromClient: 0, bytesFromServer: 0, startedAt: 0 });
    const out = coalesce([
      { op: 'add', flow: flow('short') },
      { op: 'add', flow: flow('long') },
      { op: 'update', key: 'short', fields: { outbound: 'direct' } },
      { op: 'update', key: 'long', fields: { outbound: 'direct', name: 'a.example' } },
      { op: 'remove', key: 'short', reason: 'done', bytesFromClient: 1, bytesFromServer: 2 },
      { op: 'update', key: 'old', fields: { bytesFromClient: 5 } },
      { op: 'update', key: 'old', fields: { bytesFromServer: 6 } },
      { op: 'update', key: 'older', fields: { bytesFromClient: 5 } },
      { op: 'remove', key: 'older', reason: 'done', bytesFromClient: 7, bytesFromServer: 8 },
      { op: 'update', key: 'short', fields: { bytesFromClient: 9 } },
    ]);
    assert.deepEqual(out, [
      { op: 'add', flow: { ...flow('long'), outbound: 'direct', name: 'a.example' } },
      { op: 'update', key: 'old', fields: { bytesFromClient: 5, bytesFromServer: 6 } },
      { op: 'remove', key: 'older', reason: 'done', bytesFromClient: 7, bytesFromServer: 8 },
    ]);
  });
});

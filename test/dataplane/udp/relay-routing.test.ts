// A reload's routing on a UDP relay whose loop is not running (before start, or between restarts):
// nothing writes the counters then, so the relay moves them itself; a routing it cannot carry is
// refused with the routing in force unchanged. (With a running loop: test/cli/run-reroute.root.test.ts.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoutingConfig } from '../../../src/core/route/config.js';
import { DescriptorBudget } from '../../../src/sys/descriptor-budget.js';
import type { SocketApi } from '../../../src/sys/socket.js';
import { UdpRelay } from '../../../src/dataplane/udp/relay.js';

const route = (name: string, outbound: string): RoutingConfig['routes'][number] => ({ name, outbound, destinations: [], destinationLists: [], sources: [], sourceLists: [], ports: [{ from: 53, to: 53 }], protocols: [], listeners: [], names: [], nameLists: [] });
const routing = (routes: RoutingConfig['routes'], outbounds: RoutingConfig['outbounds'] = []): RoutingConfig => ({ listener: 'main', defaultOutbound: { name: 'direct', kind: 'direct' }, outbounds, lists: [], routes });

describe('UDP relay routing swap without a running loop', () => {
  const relay = (): UdpRelay =>
    new UdpRelay(
      { families: [4], port: 8000, upstream: 'direct', routing: routing([route('dns', 'reject')], [{ name: 'reject', kind: 'reject' }]), upstreamMark: 2, idleTimeoutMs: 1000, maxSessions: 10 },
      { sockets: {} as SocketApi, emit: () => undefined, budget: DescriptorBudget.create({ limit: 1024, open: 0 }) },
    );

  it('takes the new routing and keeps every name in the counters', async () => {
    const r = relay();
    assert.deepEqual(Object.keys(r.counters().routes), ['dns', 'default']);
    await r.setRouting({ routing: routing([route('games', 'transparent')], [{ name: 'transparent', kind: 'transparent' }]), sniffTimeoutMs: 500 });
    const after = r.counters();
    assert.deepEqual(Object.keys(after.routes), ['dns', 'games', 'default'], 'the old route stays counted, the new one is added');
    assert.deepEqual(Object.keys(after.outbounds), ['reject', 'direct', 'transparent']);
  });

  it('refuses a routing that sends UDP where it cannot go; the routing in force stays', async () => {
    const r = relay();
    const http = { name: 'web', kind: 'http', proxy: { protocol: 'http', host: '192.0.2.7', port: 3128 } } as unknown as RoutingConfig['outbounds'][number];
    await assert.rejects(r.setRouting({ routing: routing([route('dns', 'web')], [http]), sniffTimeoutMs: 300 }), /outbound web \(http\) cannot carry UDP/);
    assert.deepEqual(Object.keys(r.counters().routes), ['dns', 'default']);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RoutingConfig } from '../../../src/core/route/config.js';
import { createCounterBuffer, errorReasonOf, migrateCounters, outboundSlot, unionLayout, routedLayoutOf, routeSlot, snapshotCounters, sumUdpCounters, UDP_COUNTER_INDEX, UDP_COUNTER_SLOTS, UDP_ERROR_INDEX, UDP_ERROR_REASONS, UDP_ROUTED_INDEX, UDP_ROUTED_NAMES } from '../../../src/dataplane/udp/counters.js';

describe('UDP counters', () => {
  it('gives every counter and error reason its own slot and snapshots them as a plain object', () => {
    const slots = new Float64Array(createCounterBuffer());
    const indices = [...Object.values(UDP_COUNTER_INDEX), ...Object.values(UDP_ERROR_INDEX)];
    assert.equal(new Set(indices).size, slots.length);
    slots[UDP_COUNTER_INDEX.sessionsCreated] = 3;
    slots[UDP_COUNTER_INDEX.bytesFromServers] = 2 ** 40;
    slots[UDP_ERROR_INDEX['upstream-refused']] = 1;
    const snap = snapshotCounters(slots);
    assert.equal(snap.sessionsCreated, 3);
    assert.equal(snap.bytesFromServers, 2 ** 40, 'beyond 32 bits');
    assert.equal(snap.errors['upstream-refused'], 1);
    assert.deepEqual(Object.keys(snap.errors), [...UDP_ERROR_REASONS]);
    assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap, 'JSON-safe');
  });

  it('maps errno names to reasons by direction', () => {
    assert.equal(errorReasonOf('ECONNREFUSED', 'upstream'), 'upstream-refused');
    assert.equal(errorReasonOf('ECONNREFUSED', 'client'), 'client-refused');
    assert.equal(errorReasonOf('EHOSTUNREACH', 'upstream'), 'upstream-unreachable');
    assert.equal(errorReasonOf('EAGAIN', 'client'), 'client-busy');
    assert.equal(errorReasonOf('ENOBUFS', 'upstream'), 'upstream-busy');
    assert.equal(errorReasonOf('EMSGSIZE', 'upstream'), 'message-too-big');
    assert.equal(errorReasonOf('EBADF', 'upstream'), 'other');
  });
});

describe('UDP counters per route and outbound', () => {
  const routing = {
    listener: 'main',
    defaultOutbound: { name: 'direct', kind: 'direct' },
    outbounds: [{ name: 'reject', kind: 'reject' }],
    lists: [],
    routes: [{ name: 'blocked', outbound: 'reject' }, { name: 'dns', outbound: 'direct' }],
  } as unknown as RoutingConfig;

  it('lays out one block per route (the default last) and per outbound after the fixed slots', () => {
    const layout = routedLayoutOf(routing);
    assert.deepEqual(layout, { routes: ['blocked', 'dns', 'default'], outbounds: ['reject', 'direct'] });
    const slots = new Float64Array(createCounterBuffer(layout));
    assert.equal(slots.length, UDP_COUNTER_SLOTS + 5 * UDP_ROUTED_NAMES.length);
    slots[routeSlot(1) + UDP_ROUTED_INDEX.sessions] = 2;
    slots[outboundSlot(layout, 0) + UDP_ROUTED_INDEX.rejected] = 7;
    const snap = snapshotCounters(slots, layout);
    assert.equal(snap.routes['dns']?.sessions, 2);
    assert.equal(snap.routes['blocked']?.sessions, 0);
    assert.equal(snap.outbounds['reject']?.rejected, 7);
    assert.equal(snap.outbounds['direct']?.rejected, 0);
  });

  it('adds up several relays\' routes and outbounds by name', () => {
    const layout = routedLayoutOf(routing);
    const slots = new Float64Array(createCounterBuffer(layout));
    slots[routeSlot(2) + UDP_ROUTED_INDEX.bytesFromServers] = 10;
    const one = snapshotCounters(slots, layout);
    const other = snapshotCounters(new Float64Array(createCounterBuffer()));
    const sum = sumUdpCounters([one, one, other]);
    assert.equal(sum.routes['default']?.bytesFromServers, 20);
    assert.deepEqual(Object.keys(sum.outbounds).sort(), ['direct', 'reject']);
  });

  it('after a reload, keeps every name so far (the default last) and moves every count to the block of its name', () => {
    const before = routedLayoutOf(routing);
    const after = routedLayoutOf({ ...routing, defaultOutbound: { name: 'vpn', kind: 'transparent' }, routes: [{ name: 'games', outbound: 'reject' }, { name: 'dns', outbound: 'direct' }] } as unknown as RoutingConfig);
    const layout = unionLayout(before, after);
    assert.deepEqual(layout, { routes: ['blocked', 'dns', 'games', 'default'], outbounds: ['reject', 'direct', 'vpn'] });
    const from = new Float64Array(createCounterBuffer(before));
    from.forEach((_, i) => (from[i] = i + 1));
    const to = new Float64Array(createCounterBuffer(layout));
    migrateCounters(from, before, to, layout);
    const was = snapshotCounters(from, before);
    const now = snapshotCounters(to, layout);
    assert.deepEqual({ ...now, routes: undefined, outbounds: undefined }, { ...was, routes: undefined, outbounds: undefined }, 'the fixed counters as they were');
    for (const name of before.routes) assert.deepEqual(now.routes[name], was.routes[name], `route ${name}`);
    for (const name of before.outbounds) assert.deepEqual(now.outbounds[name], was.outbounds[name], `outbound ${name}`);
    assert.deepEqual(Object.values(now.routes['games'] ?? {}), UDP_ROUTED_NAMES.map(() => 0), 'a new route starts at 0');
    assert.deepEqual(Object.values(now.outbounds['vpn'] ?? {}), UDP_ROUTED_NAMES.map(() => 0));
    assert.throws(() => migrateCounters(to, layout, from, before), /route games missing from the new layout/);
  });
});

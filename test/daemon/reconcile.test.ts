import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listenerChanges } from '../../src/daemon/reconcile.js';
import { DEFAULT_PROXY_CONFIG, type ProxyConfig } from '../../src/dataplane/proxy.js';

const at = (port: number, more: Partial<ProxyConfig> = {}): ProxyConfig => ({ ...DEFAULT_PROXY_CONFIG, port, ...more });

describe('listener changes on reload', () => {
  it('sorts listeners by name into kept, added, removed and changed', () => {
    const running = new Map([['a', at(1)], ['b', at(2)], ['c', at(3)]]);
    const wanted = new Map([['a', at(1)], ['c', at(3, { udpIdleTimeoutMs: 5000 })], ['d', at(4)]]);
    assert.deepEqual(listenerChanges(running, wanted), { kept: ['a'], added: ['d'], removed: ['b'], changed: ['c'] });
  });

  it('keeps a listener that differs only in flow events, naming it to be switched in place', () => {
    const running = new Map([['a', at(1)], ['b', at(2, { flowEvents: true })], ['c', at(3)]]);
    const wanted = new Map([['a', at(1, { flowEvents: true })], ['b', at(2)], ['c', at(3)]]);
    assert.deepEqual(listenerChanges(running, wanted), { kept: ['a', 'b', 'c'], added: [], removed: [], changed: [], flowEventsSwitched: ['a', 'b'] });
  });

  it('replaces a listener whose flow events and anything else differ (the new one starts with its flow events)', () => {
    const changes = listenerChanges(new Map([['a', at(1)]]), new Map([['a', at(2, { flowEvents: true })]]));
    assert.deepEqual(changes, { kept: [], added: [], removed: [], changed: ['a'] });
  });

  it('keeps a listener whose routes, sniff timeout or own outbound differ, naming it to be swapped in place', () => {
    const routing = (name: string): NonNullable<ProxyConfig['routing']> => ({ listener: 'a', defaultOutbound: { name, kind: 'direct' }, outbounds: [], lists: [], routes: [] });
    const running = new Map([['a', at(1, { routing: routing('direct') })], ['b', at(2, { sniffTimeoutMs: 300 })], ['c', at(3, { upstream: 'direct' })], ['d', at(4)]]);
    const wanted = new Map([['a', at(1, { routing: routing('other') })], ['b', at(2, { sniffTimeoutMs: 500 })], ['c', at(3, { upstream: 'transparent', flowEvents: true })], ['d', at(4)]]);
    assert.deepEqual(listenerChanges(running, wanted), { kept: ['a', 'b', 'c', 'd'], added: [], removed: [], changed: [], flowEventsSwitched: ['c'], routingSwitched: ['a', 'b', 'c'] });
    const replaced = listenerChanges(new Map([['a', at(1, { routing: routing('direct') })]]), new Map([['a', at(1, { routing: routing('other'), maxConnections: 5 })]]));
    assert.deepEqual(replaced, { kept: [], added: [], removed: [], changed: ['a'] }, 'with anything else changed too, replaced (the new one starts with the new routes)');
  });

  it('compares by value: an equal configuration from a new file is kept', () => {
    assert.deepEqual(listenerChanges(new Map([['a', at(1, { families: [4] })]]), new Map([['a', at(1, { families: [4] })]])).kept, ['a']);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EndpointCache, MAX_ADDRESSES, MAX_PORTS } from '../../../../src/dataplane/tcp/splice/endpoint-cache.js';

const v4 = (address: string, port: number) => ({ family: 4 as const, address, port });

describe('splice engine endpoint cache', () => {
  it('gives one Endpoint per destination address and port, equal to the decoded one', () => {
    const cache = new EndpointCache();
    const first = cache.destination(v4('203.0.113.20', 80));
    assert.deepEqual(first, v4('203.0.113.20', 80));
    assert.equal(cache.destination(v4('203.0.113.20', 80)), first, 'the same object for the next flow');
    assert.notEqual(cache.destination(v4('203.0.113.20', 443)), first);
    assert.deepEqual(cache.destination({ family: 6, address: '2001:db8::20', port: 80 }), { family: 6, address: '2001:db8::20', port: 80 });
  });

  it('gives client endpoints their own port, equal to the decoded one', () => {
    const cache = new EndpointCache();
    const a = cache.client(v4('198.51.100.10', 40000));
    const b = cache.client(v4('198.51.100.10', 40001));
    assert.deepEqual(a, v4('198.51.100.10', 40000));
    assert.deepEqual(b, v4('198.51.100.10', 40001));
  });

  it('keeps at most MAX_PORTS destinations per address, and starts over at MAX_ADDRESSES addresses', () => {
    const cache = new EndpointCache();
    for (let port = 1; port <= MAX_PORTS; port++) cache.destination(v4('203.0.113.20', port));
    const over = cache.destination(v4('203.0.113.20', MAX_PORTS + 1));
    assert.notEqual(cache.destination(v4('203.0.113.20', MAX_PORTS + 1)), over, 'a port past the bound is not kept');
    const kept = cache.destination(v4('203.0.113.20', 1));
    assert.equal(cache.destination(v4('203.0.113.20', 1)), kept);
    for (let i = 0; i < MAX_ADDRESSES; i++) cache.client(v4(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 1));
    assert.notEqual(cache.destination(v4('203.0.113.20', 1)), kept, 'cleared at MAX_ADDRESSES: a new shared copy');
  });

  it('does not share IPv6 endpoints with a scope id', () => {
    const cache = new EndpointCache();
    const scoped = { family: 6 as const, address: 'fe80::1', port: 80, scopeId: 2 };
    assert.equal(cache.destination(scoped), scoped);
    assert.equal(cache.client(scoped), scoped);
    assert.notEqual(cache.destination({ ...scoped }), scoped);
  });
});

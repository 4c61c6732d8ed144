import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionTable, sessionKey } from '../../../src/dataplane/udp/session-table.js';

interface S {
  key: string;
  lastActiveMs: number;
}

const s = (key: string, at: number): S => ({ key, lastActiveMs: at });

describe('UDP session table', () => {
  it('keys sessions by client and original destination', () => {
    assert.equal(sessionKey({ address: '198.51.100.10', port: 4000 }, { address: '203.0.113.20', port: 80 }), '198.51.100.10|4000|203.0.113.20|80');
    assert.notEqual(sessionKey({ address: '198.51.100.10', port: 4000 }, { address: '203.0.113.20', port: 80 }), sessionKey({ address: '198.51.100.10', port: 4000 }, { address: '203.0.113.21', port: 80 }));
  });

  it('keeps least-recently-used order: touching moves a session to the back', () => {
    const table = new SessionTable<S>();
    const [a, b, c] = [s('a', 0), s('b', 1), s('c', 2)];
    for (const x of [a, b, c]) table.add(x);
    assert.equal(table.oldest(), a);
    table.touch(a, 3);
    assert.equal(table.oldest(), b);
    table.delete(b);
    assert.equal(table.oldest(), c);
    assert.equal(table.size, 2);
  });

  it('finds the least recently used session other than the one being served (eviction for its reply socket)', () => {
    const table = new SessionTable<S>();
    const [a, b] = [s('a', 0), s('b', 1)];
    table.add(a);
    assert.equal(table.oldest(a), undefined, 'never the kept one');
    table.add(b);
    assert.equal(table.oldest(a), b);
    assert.equal(table.oldest(b), a);
  });

  it('lists expired sessions oldest first and stops at the first live one', () => {
    const table = new SessionTable<S>();
    for (const x of [s('a', 0), s('b', 50), s('c', 100)]) table.add(x);
    assert.deepEqual(table.expired(120, 60).map((x) => x.key), ['a', 'b']);
    assert.deepEqual(table.expired(120, 200), []);
  });

  it('does not delete a newer session that reused the key', () => {
    const table = new SessionTable<S>();
    const old = s('k', 0);
    table.add(old);
    const fresh = s('k', 5);
    table.add(fresh);
    table.delete(old);
    assert.equal(table.get('k'), fresh);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpConnectHandshake, MAX_RESPONSE_HEAD } from '../../../src/core/upstream/http-connect.js';

const V4 = { family: 4, address: '203.0.113.20', port: 80 } as const;
const V6 = { family: 6, address: '2001:db8:2::20', port: 443 } as const;
const text = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

describe('HTTP CONNECT handshake', () => {
  it('asks for the destination by address, brackets around IPv6, Basic credentials when given', () => {
    assert.equal(text(new HttpConnectHandshake(V4).first), 'CONNECT 203.0.113.20:80 HTTP/1.1\r\nHost: 203.0.113.20:80\r\n\r\n');
    const h = new HttpConnectHandshake(V6, { username: 'alice', password: 'p:w' });
    assert.equal(text(h.first), `CONNECT [2001:db8:2::20]:443 HTTP/1.1\r\nHost: [2001:db8:2::20]:443\r\nProxy-Authorization: Basic ${Buffer.from('alice:p:w').toString('base64')}\r\n\r\n`);
  });

  it('opens the tunnel on 2xx and claims the head only, not the bytes after it', () => {
    const head = 'HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n';
    assert.deepEqual(new HttpConnectHandshake(V4).offer(Buffer.from(`${head}SSH-2.0-x\r\n`)), { kind: 'done', take: head.length });
  });

  it('finds the blank line when it straddles two reads', () => {
    const h = new HttpConnectHandshake(V4);
    assert.deepEqual(h.offer(Buffer.from('HTTP/1.0 200 OK\r\n\r')), { kind: 'more', take: 18 });
    assert.deepEqual(h.offer(Buffer.from('\nhello')), { kind: 'done', take: 1 });
  });

  it('fails with the status: 407, 401 and 403 as EACCES (like a SOCKS5 authentication failure), 502 and 503 as ECONNREFUSED, 504 as ETIMEDOUT', () => {
    const cases: [number, string | undefined][] = [[407, 'EACCES'], [401, 'EACCES'], [403, 'EACCES'], [502, 'ECONNREFUSED'], [503, 'ECONNREFUSED'], [504, 'ETIMEDOUT'], [500, undefined]];
    for (const [code, errno] of cases) {
      const head = `HTTP/1.1 ${code} No\r\nContent-Length: 0\r\n\r\n`;
      assert.deepEqual(new HttpConnectHandshake(V4).offer(Buffer.from(head)), { kind: 'failed', take: head.length, reason: `http-connect-${code}`, ...(errno ? { errno } : {}) });
    }
  });

  it('fails on something that is not an HTTP response, or a head without end', () => {
    assert.equal(new HttpConnectHandshake(V4).offer(Buffer.from('\x05\x00\r\n\r\n')).kind, 'failed');
    const h = new HttpConnectHandshake(V4);
    let step = h.offer(Buffer.from('HTTP/1.1 200 OK\r\n'));
    for (let i = 0; i <= MAX_RESPONSE_HEAD / 1024 + 1 && step.kind === 'more'; i++) step = h.offer(Buffer.alloc(1024, 'a'));
    assert.deepEqual(step, { kind: 'failed', take: 1024, reason: 'http-connect-protocol', errno: 'EPROTO' });
  });

  it('refuses a head over the bound also when it arrives whole in one read', () => {
    const head = `HTTP/1.1 200 OK\r\nX-Pad: ${'a'.repeat(20 * 1024)}\r\n\r\n`;
    assert.deepEqual(new HttpConnectHandshake(V4).offer(Buffer.from(`${head}data`)), { kind: 'failed', take: head.length, reason: 'http-connect-protocol', errno: 'EPROTO' });
    const exact = `HTTP/1.1 200 OK\r\nX-Pad: ${'a'.repeat(MAX_RESPONSE_HEAD - 30)}\r\n\r\n`;
    assert.ok(exact.length <= MAX_RESPONSE_HEAD);
    assert.equal(new HttpConnectHandshake(V4).offer(Buffer.from(exact)).kind, 'done');
  });
});

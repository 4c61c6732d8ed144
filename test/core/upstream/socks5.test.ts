import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HandshakeStep } from '../../../src/core/upstream/handshake.js';
import { Socks5Handshake } from '../../../src/core/upstream/socks5.js';

const V4 = { family: 4, address: '203.0.113.20', port: 80 } as const;
const V6 = { family: 6, address: '2001:db8:2::20', port: 443 } as const;
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
const SUCCESS_V4 = bytes(5, 0, 0, 1, 192, 0, 2, 1, 0x1f, 0x90);

function sent(step: HandshakeStep): string {
  assert.equal(step.kind, 'send', JSON.stringify(step));
  return hex((step as { send: Uint8Array }).send);
}

describe('SOCKS5 handshake', () => {
  it('offers no authentication, then CONNECTs to an IPv4 destination', () => {
    const h = new Socks5Handshake(V4);
    assert.equal(hex(h.first), '050100');
    assert.equal(sent(h.offer(bytes(5, 0))), '05010001cb0071140050');
    assert.deepEqual(h.offer(SUCCESS_V4), { kind: 'done', take: 10 });
  });

  it('CONNECTs to an IPv6 destination with ATYP 4 and 16 address bytes', () => {
    const h = new Socks5Handshake(V6);
    assert.equal(sent(h.offer(bytes(5, 0))), '05010004' + '20010db8000200000000000000000020' + '01bb');
  });

  it('claims only the reply: bytes the destination sent right after it stay for the relay', () => {
    const h = new Socks5Handshake(V4);
    h.offer(bytes(5, 0));
    const banner = Buffer.from('SSH-2.0-x\r\n');
    assert.deepEqual(h.offer(Buffer.concat([SUCCESS_V4, banner])), { kind: 'done', take: 10 });
  });

  it('takes a reply that arrives a byte at a time, never claiming nothing', () => {
    const h = new Socks5Handshake(V6);
    h.offer(bytes(5, 0));
    const reply = bytes(5, 0, 0, 4, ...new Array<number>(16).fill(0), 0, 80);
    for (let i = 0; i < reply.length - 1; i++) assert.deepEqual(h.offer(reply.subarray(i, i + 1)), { kind: 'more', take: 1 });
    assert.deepEqual(h.offer(reply.subarray(reply.length - 1)), { kind: 'done', take: 1 });
  });

  it('refuses a success reply with an address type it cannot size (0x09): its bytes never reach the client', () => {
    const h = new Socks5Handshake(V4);
    h.offer(bytes(5, 0));
    assert.deepEqual(h.offer(bytes(5, 0, 0, 9, 1, 2, 3, 4, 0, 80)), { kind: 'failed', take: 5, reason: 'socks5-protocol', errno: 'EPROTO' });
  });

  it('reads a domain-name bound address by its length byte', () => {
    const h = new Socks5Handshake(V4);
    h.offer(bytes(5, 0));
    const name = Buffer.from('proxy.example');
    const reply = Buffer.concat([bytes(5, 0, 0, 3, name.length), name, bytes(0, 80), Buffer.from('tail')]);
    assert.deepEqual(h.offer(reply), { kind: 'done', take: 7 + name.length });
  });

  it('authenticates with username and password when the proxy asks (RFC 1929)', () => {
    const h = new Socks5Handshake(V4, { username: 'alice', password: 'pw' });
    assert.equal(hex(h.first), '05020002');
    assert.equal(sent(h.offer(bytes(5, 2))), '0105' + Buffer.from('alice').toString('hex') + '02' + Buffer.from('pw').toString('hex'));
    assert.equal(sent(h.offer(bytes(1, 0))).slice(0, 8), '05010001');
    assert.equal(h.offer(SUCCESS_V4).kind, 'done');
  });

  it('fails on rejected credentials, a required authentication, and a refused connection', () => {
    const auth = new Socks5Handshake(V4, { username: 'a', password: 'b' });
    auth.offer(bytes(5, 2));
    assert.deepEqual(auth.offer(bytes(1, 1)), { kind: 'failed', take: 2, reason: 'socks5-auth-failed', errno: 'EACCES' });
    assert.deepEqual(new Socks5Handshake(V4).offer(bytes(5, 0xff)), { kind: 'failed', take: 2, reason: 'socks5-auth-required', errno: 'EACCES' });
    const refused = new Socks5Handshake(V4);
    refused.offer(bytes(5, 0));
    assert.deepEqual(refused.offer(bytes(5, 5, 0, 1, 0, 0, 0, 0, 0, 0)), { kind: 'failed', take: 10, reason: 'socks5-connection-refused', errno: 'ECONNREFUSED' });
  });

  it('fails on a proxy that does not speak SOCKS5, or picks a method it was not offered', () => {
    assert.deepEqual(new Socks5Handshake(V4).offer(Buffer.from('HTTP/1.1 400')), { kind: 'failed', take: 2, reason: 'socks5-protocol', errno: 'EPROTO' });
    assert.deepEqual(new Socks5Handshake(V4).offer(bytes(5, 2)), { kind: 'failed', take: 2, reason: 'socks5-protocol', errno: 'EPROTO' });
  });

  it('keeps the bound address of the reply (IPv4, IPv6, domain) and fails on an unknown address type', () => {
    const h = new Socks5Handshake(V4);
    h.offer(bytes(5, 0));
    h.offer(SUCCESS_V4);
    assert.deepEqual(h.bound, { family: 4, address: '192.0.2.1', port: 8080 });
    const unknown = new Socks5Handshake(V4);
    unknown.offer(bytes(5, 0));
    assert.deepEqual(unknown.offer(bytes(5, 0, 0, 9, 1, 2, 3, 4, 0, 80)), { kind: 'failed', take: 5, reason: 'socks5-protocol', errno: 'EPROTO' });
    const hostile = new Socks5Handshake(V4);
    hostile.offer(bytes(5, 0));
    assert.equal(hostile.offer(Buffer.concat([bytes(5, 0, 0, 3, 4), Buffer.from('a\r\nb'), bytes(0, 80)])).kind, 'failed');
  });

  it('UDP ASSOCIATE: sends command 3 with the client address, and reports the relay (0.0.0.0 kept for the caller to replace)', () => {
    const h = new Socks5Handshake({ family: 4, address: '0.0.0.0', port: 0 }, undefined, 'udp-associate');
    assert.equal(sent(h.offer(bytes(5, 0))), '05030001000000000000');
    assert.deepEqual(h.offer(bytes(5, 0, 0, 1, 0, 0, 0, 0, 0x30, 0x39)), { kind: 'done', take: 10 });
    assert.deepEqual(h.bound, { family: 4, address: '0.0.0.0', port: 12345 });
    const v6 = new Socks5Handshake({ family: 6, address: '::', port: 0 }, { username: 'u', password: 'p' }, 'udp-associate');
    v6.offer(bytes(5, 2));
    assert.equal(sent(v6.offer(bytes(1, 0))), '05030004' + '00'.repeat(16) + '0000');
    v6.offer(bytes(5, 0, 0, 4, 0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1, 0x30, 0x39));
    assert.deepEqual(v6.bound, { family: 6, address: '2001:db8::1', port: 12345 });
  });

  it('UDP ASSOCIATE refused by a server without UDP: command not supported', () => {
    const h = new Socks5Handshake({ family: 4, address: '0.0.0.0', port: 0 }, undefined, 'udp-associate');
    h.offer(bytes(5, 0));
    assert.deepEqual(h.offer(bytes(5, 7, 0, 1, 0, 0, 0, 0, 0, 0)), { kind: 'failed', take: 10, reason: 'socks5-command-not-supported' });
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeSocks5Address, encodeSocks5Address, udpRelayEndpoint } from '../../../src/core/upstream/socks5-address.js';
import { isTproxyError } from '../../../src/core/errors.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const PROXY_V4 = { family: 4, address: '192.0.2.1', port: 1080 } as const;
const PROXY_V6 = { family: 6, address: '2001:db8::1', port: 1080 } as const;

describe('SOCKS5 address field', () => {
  it('encodes IPv4, IPv6 and domain names (normalised)', () => {
    assert.equal(hex(encodeSocks5Address({ family: 4, address: '203.0.113.20', port: 53 })), '01cb0071140035');
    assert.equal(hex(encodeSocks5Address({ family: 6, address: '2001:db8::20', port: 443 })), '0420010db8000000000000000000000020' + '01bb');
    assert.equal(hex(encodeSocks5Address({ family: 'domain', name: 'WWW.Example.com.', port: 80 })), `030f${hex(Buffer.from('www.example.com'))}0050`);
    assert.throws(() => encodeSocks5Address({ family: 'domain', name: 'a b', port: 80 }), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT'));
  });

  it('decodes each type at an offset, and says why it cannot', () => {
    const buf = Buffer.from('ff0301610035ff', 'hex');
    assert.deepEqual(decodeSocks5Address(buf, 1), { address: { family: 'domain', name: 'a', port: 53 }, end: 6 });
    assert.deepEqual(decodeSocks5Address(Buffer.from('01cb00711400', 'hex'), 0), { error: 'truncated' });
    assert.deepEqual(decodeSocks5Address(Buffer.from('03', 'hex'), 0), { error: 'truncated' });
    assert.deepEqual(decodeSocks5Address(Buffer.alloc(0), 0), { error: 'truncated' });
    assert.deepEqual(decodeSocks5Address(Buffer.from('05cb0071140035', 'hex'), 0), { error: 'bad-address-type' });
    assert.deepEqual(decodeSocks5Address(Buffer.from('03000035', 'hex'), 0), { error: 'bad-domain' });
    assert.deepEqual(decodeSocks5Address(Buffer.from('0302610a0035', 'hex'), 0), { error: 'bad-domain' });
  });

  it('reads a relay of 0.0.0.0 or :: as the proxy’s own address, and keeps any other', () => {
    assert.deepEqual(udpRelayEndpoint({ family: 4, address: '0.0.0.0', port: 40000 }, PROXY_V4), { family: 4, address: '192.0.2.1', port: 40000 });
    assert.deepEqual(udpRelayEndpoint({ family: 6, address: '::', port: 40000 }, PROXY_V6), { family: 6, address: '2001:db8::1', port: 40000 });
    assert.deepEqual(udpRelayEndpoint({ family: 4, address: '0.0.0.0', port: 40000 }, PROXY_V6), { family: 6, address: '2001:db8::1', port: 40000 });
    assert.deepEqual(udpRelayEndpoint({ family: 4, address: '198.51.100.7', port: 40000 }, PROXY_V4), { family: 4, address: '198.51.100.7', port: 40000 });
    assert.deepEqual(udpRelayEndpoint({ family: 'domain', name: 'relay.example', port: 1 }, PROXY_V4), { family: 'domain', name: 'relay.example', port: 1 });
  });
});

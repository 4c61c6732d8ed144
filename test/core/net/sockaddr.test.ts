import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { isTproxyError } from '../../../src/core/errors.js';
import { decodeSockaddr, dottedQuad, encodeSockaddr, encodeSockaddrInto, endpointKey, familyOf, formatEndpoint, normalizeAddress, sameEndpoint, sockaddrKey } from '../../../src/core/net/sockaddr.js';

describe('sockaddr', () => {
  it('encodes sockaddr_in with host-order family and network-order port', () => {
    const buf = encodeSockaddr({ family: 4, address: '198.51.100.10', port: 8000 });
    assert.equal(buf.length, 16);
    assert.deepEqual([...buf], [2, 0, 0x1f, 0x40, 198, 51, 100, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('encodes sockaddr_in6 with address at offset 8 and scope id at 24', () => {
    const buf = encodeSockaddr({ family: 6, address: '2001:db8:1::10', port: 80, scopeId: 3 });
    assert.equal(buf.length, 28);
    assert.equal(buf.readUInt16LE(0), 10);
    assert.equal(buf.readUInt16BE(2), 80);
    assert.equal(buf.readUInt32LE(4), 0, 'flowinfo');
    assert.equal(buf.subarray(8, 24).toString('hex'), '20010db8000100000000000000000010');
    assert.equal(buf.readUInt32LE(24), 3);
  });

  const cases = [
    { family: 4, address: '203.0.113.20', port: 80 },
    { family: 4, address: '0.0.0.0', port: 0 },
    { family: 4, address: '255.255.255.255', port: 65535 },
    { family: 6, address: '2001:db8:2::20', port: 443 },
    { family: 6, address: '::', port: 0 },
    { family: 6, address: '::ffff:198.51.100.1', port: 53 },
    { family: 6, address: 'fe80::1', port: 1, scopeId: 7 },
  ] as const;
  for (const endpoint of cases) {
    it(`round-trips ${formatEndpoint(endpoint)}`, () => {
      const decoded = decodeSockaddr(encodeSockaddr(endpoint));
      assert.equal(decoded.family, endpoint.family);
      assert.equal(decoded.port, endpoint.port);
      assert.equal(normalizeAddress(decoded.address), normalizeAddress(endpoint.address));
      assert.equal(decoded.scopeId, 'scopeId' in endpoint ? endpoint.scopeId : undefined);
    });
  }

  it('encodes every dotted quad form with the bytes ipaddr.js gives (the hand-read fast path)', () => {
    for (const address of ['0.0.0.0', '1.2.3.4', '10.0.0.1', '100.64.9.99', '192.0.2.255', '255.255.255.255', '203.0.113.200']) {
      const buf = encodeSockaddr({ family: 4, address, port: 4242 });
      assert.deepEqual([...buf], [2, 0, 0x10, 0x92, ...ipaddr.IPv4.parse(address).toByteArray(), 0, 0, 0, 0, 0, 0, 0, 0], address);
    }
  });

  it('agrees with ipaddr.js on any text of digits and dots (seeded): the same bytes, or refused where it refuses', () => {
    const part = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.stringMatching(/^[0-9]{0,4}$/));
    const text = fc.oneof(
      fc.array(part, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('.')),
      fc.stringMatching(/^[0-9.]{0,18}$/),
    );
    fc.assert(
      fc.property(text, (address) => {
        const valid = ipaddr.IPv4.isValidFourPartDecimal(address);
        let encoded: number[] | undefined;
        try {
          encoded = [...encodeSockaddr({ family: 4, address, port: 4242 })];
        } catch (e) {
          if (!isTproxyError(e, 'ERR_INVALID_ARGUMENT')) throw e;
        }
        if (!valid) return encoded === undefined;
        return encoded !== undefined && encoded.join() === [2, 0, 0x10, 0x92, ...ipaddr.IPv4.parse(address).toByteArray(), 0, 0, 0, 0, 0, 0, 0, 0].join();
      }),
      { seed: 4242, numRuns: 2000 },
    );
  });

  it('gives the dotted quad ipaddr.js prints for any four bytes, again and again, and after its cache was cleared (seeded)', () => {
    const quad = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(quad, ([a, b, c, d]) => {
        const expected = ipaddr.fromByteArray([a, b, c, d]).toString();
        return dottedQuad(a, b, c, d) === expected && dottedQuad(a, b, c, d) === expected;
      }),
      { seed: 1616, numRuns: 3000 },
    );
    assert.equal(dottedQuad(198, 51, 100, 10), '198.51.100.10');
    assert.equal(decodeSockaddr(encodeSockaddr({ family: 4, address: '203.0.113.7', port: 1 })).address, '203.0.113.7');
  });

  it('writes into memory of the caller the bytes encodeSockaddr gives, over whatever was there, and says how many', () => {
    const target = Buffer.alloc(64, 0xee);
    for (const endpoint of [...cases, { family: 4, address: '198.51.100.7', port: 62001 }] as const) {
      target.fill(0xee);
      const length = encodeSockaddrInto(endpoint, target, 5);
      const expected = encodeSockaddr(endpoint);
      assert.equal(length, expected.length, formatEndpoint(endpoint));
      assert.deepEqual([...target.subarray(5, 5 + length)], [...expected], formatEndpoint(endpoint));
      assert.ok(target.subarray(0, 5).every((b) => b === 0xee) && target.subarray(5 + length).every((b) => b === 0xee), 'nothing outside it written');
    }
    assert.throws(() => encodeSockaddrInto({ family: 4, address: '1.2.3.04', port: 1 }, target, 0), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT'));
    assert.throws(() => encodeSockaddrInto({ family: 4, address: '1.2.3.4', port: 70000 }, target, 0), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT'));
    assert.throws(() => encodeSockaddrInto({ family: 4, address: '1.2.3.4', port: 1 }, target, 60), RangeError, 'past the end: refused, not cut short');
  });

  for (const address of ['01.2.3.4', '1.2.3.04', '1.2.3.256', '1.2.3.1000', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.a', '0x1.2.3.4']) {
    it(`refuses ${JSON.stringify(address)} as an IPv4 address, as ipaddr.js does`, () => {
      assert.equal(ipaddr.IPv4.isValidFourPartDecimal(address), false);
      assert.throws(
        () => encodeSockaddr({ family: 4, address, port: 1 }),
        (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && /not an IPv4 address/.test(e.message),
      );
    });
  }

  it('decodes the shortened IPv6 text form', () => {
    const buf = encodeSockaddr({ family: 6, address: '2001:0db8:0000:0000:0000:0000:0000:0001', port: 1 });
    assert.equal(decodeSockaddr(buf).address, '2001:db8::1');
  });

  const bad: [string, () => unknown, RegExp][] = [
    ['an IPv6 address as IPv4', () => encodeSockaddr({ family: 4, address: '::1', port: 1 }), /not an IPv4 address/],
    ['an IPv4 address as IPv6', () => encodeSockaddr({ family: 6, address: '1.2.3.4', port: 1 }), /not an IPv6 address/],
    ['a port above 65535', () => encodeSockaddr({ family: 4, address: '1.2.3.4', port: 70000 }), /out of range/],
    ['a fractional port', () => encodeSockaddr({ family: 4, address: '1.2.3.4', port: 1.5 }), /out of range/],
    ['a short buffer', () => decodeSockaddr(Buffer.from([2, 0, 0]), 3), /too short/],
    ['an unknown family', () => decodeSockaddr(Buffer.alloc(16, 0).fill(1, 0, 1), 16), /unsupported address family 1/],
    ['a hostname', () => familyOf('example'), /not an IPv4 or IPv6 address/],
  ];
  for (const [what, call, message] of bad) {
    it(`rejects ${what} with ERR_INVALID_ARGUMENT`, () => {
      assert.throws(call, (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && message.test(e.message));
    });
  }

  it('compares endpoints across IPv4-mapped and plain notation', () => {
    assert.ok(sameEndpoint({ address: '::ffff:203.0.113.20', port: 80 }, { address: '203.0.113.20', port: 80 }));
    assert.ok(!sameEndpoint({ address: '203.0.113.20', port: 81 }, { address: '203.0.113.20', port: 80 }));
    assert.equal(formatEndpoint({ address: '2001:db8::1', port: 80 }), '[2001:db8::1]:80');
    assert.equal(familyOf('2001:db8::1'), 6);
    assert.equal(familyOf('192.0.2.1'), 4);
  });

  it('keys endpoints by port and address bytes, ignoring IPv6 flowinfo and scope', () => {
    const a = encodeSockaddr({ family: 6, address: '2001:db8:1::10', port: 53 });
    const b = Buffer.from(a);
    b.writeUInt32LE(0xabcdef, 4);
    assert.equal(sockaddrKey(a), sockaddrKey(b));
    assert.equal(endpointKey({ family: 6, address: '2001:db8:1::10', port: 53 }), sockaddrKey(a));
    assert.notEqual(endpointKey({ family: 6, address: '2001:db8:1::10', port: 54 }), sockaddrKey(a));
    assert.notEqual(endpointKey({ family: 4, address: '198.51.100.10', port: 53 }), endpointKey({ family: 4, address: '198.51.100.11', port: 53 }));
    assert.equal(endpointKey({ family: 4, address: '198.51.100.10', port: 53 }).length, 6);
  });
});

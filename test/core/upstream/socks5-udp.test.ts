import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeSocks5UdpDatagram, encodeSocks5UdpDatagram, SOCKS5_UDP_HEADER_IPV4, SOCKS5_UDP_HEADER_IPV6 } from '../../../src/core/upstream/socks5-udp.js';
import type { Socks5Address } from '../../../src/core/upstream/socks5-address.js';
import { PROPERTY_RUNS } from '../../helpers/sniff.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const invalid = (reason: string): unknown => ({ kind: 'invalid', reason });
const DNS_QUERY = Buffer.from('12340100000100000000000003777777076578616d706c6503636f6d0000010001', 'hex');

describe('SOCKS5 UDP datagram header (RFC 1928 section 7)', () => {
  it('encodes RSV, FRAG 0, the destination and the payload', () => {
    const v4 = encodeSocks5UdpDatagram({ family: 4, address: '203.0.113.20', port: 53 }, DNS_QUERY);
    assert.equal(hex(v4.subarray(0, SOCKS5_UDP_HEADER_IPV4)), '00000001cb0071140035');
    assert.equal(hex(v4.subarray(SOCKS5_UDP_HEADER_IPV4)), hex(DNS_QUERY));
    const v6 = encodeSocks5UdpDatagram({ family: 6, address: '2001:db8:2::20', port: 53 }, DNS_QUERY);
    assert.equal(v6.length, SOCKS5_UDP_HEADER_IPV6 + DNS_QUERY.length);
    const name = encodeSocks5UdpDatagram({ family: 'domain', name: 'dns.example', port: 53 }, Buffer.alloc(0));
    assert.equal(hex(name), `00000003 0b ${hex(Buffer.from('dns.example'))} 0035`.replace(/\s/g, ''));
  });

  it('decodes each address type, the payload a view right after the header', () => {
    for (const destination of [
      { family: 4, address: '203.0.113.20', port: 53 },
      { family: 6, address: '2001:db8:2::20', port: 5353 },
      { family: 'domain', name: 'dns.example', port: 53 },
    ] as const) {
      const datagram = encodeSocks5UdpDatagram(destination, DNS_QUERY);
      const result = decodeSocks5UdpDatagram(datagram);
      assert.deepEqual(result, { kind: 'datagram', destination, payload: datagram.subarray(datagram.length - DNS_QUERY.length) });
    }
    assert.deepEqual(decodeSocks5UdpDatagram(Buffer.from('00000001cb0071140035', 'hex')), { kind: 'datagram', destination: { family: 4, address: '203.0.113.20', port: 53 }, payload: Buffer.alloc(0) });
  });

  const table: ReadonlyArray<readonly [string, string, unknown]> = [
    ['empty', '', invalid('truncated')],
    ['3 bytes', '000000', invalid('truncated')],
    ['an IPv4 address cut short', '00000001cb0071', invalid('truncated')],
    ['no port', '00000001cb007114', invalid('truncated')],
    ['an IPv6 address cut short', '0000000420010db8', invalid('truncated')],
    ['a domain longer than the datagram', '000000030a61620035', invalid('truncated')],
    ['FRAG 1', '00000101cb0071140035', invalid('fragmented')],
    ['FRAG 0x81 (the last fragment)', '00008101cb0071140035', invalid('fragmented')],
    ['RSV not zero', '00010001cb0071140035', invalid('bad-reserved')],
    ['ATYP 2', '00000002cb0071140035', invalid('bad-address-type')],
    ['ATYP 0', '00000000cb0071140035', invalid('bad-address-type')],
    ['an empty domain', '00000003000035', invalid('bad-domain')],
    ['a domain with a NUL', '0000000303610062 0035', invalid('bad-domain')],
  ];
  for (const [what, bytes, expected] of table) {
    it(`${what}: ${JSON.stringify(expected)}`, () => assert.deepEqual(decodeSocks5UdpDatagram(Buffer.from(bytes.replace(/\s/g, ''), 'hex')), expected));
  }

  it('property: random and mutated datagrams decode or are refused with a reason, never a throw; round trips hold', () => {
    const port = fc.integer({ min: 0, max: 65535 });
    const address: fc.Arbitrary<Socks5Address> = fc.oneof(
      fc.tuple(fc.ipV4(), port).map(([a, p]) => ({ family: 4 as const, address: a, port: p })),
      fc.tuple(fc.constantFrom('2001:db8::1', '::', '2001:db8:2::20', 'fe80::1'), port).map(([a, p]) => ({ family: 6 as const, address: a, port: p })),
      fc.tuple(fc.stringMatching(/^[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,3}\.example$/), port).map(([n, p]) => ({ family: 'domain' as const, name: n, port: p })),
    );
    const reasons = new Set(['truncated', 'bad-reserved', 'fragmented', 'bad-address-type', 'bad-domain']);
    fc.assert(
      fc.property(address, fc.uint8Array({ maxLength: 100 }), fc.array(fc.tuple(fc.nat(40), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.uint8Array({ maxLength: 300 }), (destination, payload, edits, random) => {
        const datagram = encodeSocks5UdpDatagram(destination, payload);
        const decoded = decodeSocks5UdpDatagram(datagram);
        assert.equal(decoded.kind, 'datagram');
        if (decoded.kind === 'datagram') {
          assert.deepEqual(decoded.destination, destination);
          assert.equal(hex(decoded.payload), hex(payload));
        }
        const mutated = Buffer.from(datagram);
        for (const [at, value] of edits) if (at < mutated.length) mutated[at] = value;
        for (const bytes of [mutated, random, mutated.subarray(0, edits.length * 5)]) {
          const result = decodeSocks5UdpDatagram(bytes);
          if (result.kind === 'invalid') assert.ok(reasons.has(result.reason), result.reason);
          else assert.ok(result.payload.length <= bytes.length);
        }
      }),
      { seed: 0x1571, numRuns: PROPERTY_RUNS },
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_PROXY_LIMITS, decodeProxyDatagram, decodeProxyHeader, maxProxyHeaderBytes } from '../../../src/core/proxy-protocol/decode.js';
import type { ProxyDecodeResult, ProxyHeader } from '../../../src/core/proxy-protocol/header.js';
import { encodeProxyHeaderV1 } from '../../../src/core/proxy-protocol/v1.js';
import { encodeProxyHeaderV2 } from '../../../src/core/proxy-protocol/v2.js';
import type { Endpoint } from '../../../src/core/net/sockaddr.js';
import { PROPERTY_RUNS } from '../../helpers/sniff.js';

const REASONS = new Set(['bad-signature', 'truncated', 'v1-datagram', 'v1-no-crlf', 'v1-malformed', 'v2-version', 'v2-command', 'v2-family', 'v2-too-long', 'v2-address-truncated', 'v2-tlv-malformed', 'v2-crc32c-mismatch']);

function assertResult(result: ProxyDecodeResult, offered: number): void {
  switch (result.kind) {
    case 'more':
      return;
    case 'invalid':
      assert.ok(REASONS.has(result.reason), result.reason);
      return;
    case 'header':
      assert.ok(result.take > 0 && result.take <= offered && result.take <= maxProxyHeaderBytes(), `take ${result.take}`);
      return;
    default:
      assert.fail(JSON.stringify(result));
  }
}

const port = fc.integer({ min: 0, max: 65535 });
const v4 = fc.ipV4().chain((address) => port.map((p): Endpoint => ({ family: 4, address, port: p })));
const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).chain((bytes) => port.map((p): Endpoint => ({ family: 6, address: ipv6Text(bytes), port: p })));
function ipv6Text(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
  return groups.join(':').replace(/\b(?:0:){2,}/, ':').replace(/^0::/, '::'); // not canonical on purpose: decoding canonicalises
}
const addresses = fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6)).map(([source, destination]) => ({ source, destination }));
const tlv = fc.record({ type: fc.integer({ min: 0, max: 255 }).filter((t) => t !== 3 && t !== 5), value: fc.uint8Array({ maxLength: 40 }) });
const headerV2 = fc.record({
  command: fc.constantFrom<'proxy' | 'local'>('proxy', 'local'),
  transport: fc.constantFrom<'tcp' | 'udp' | 'unspec'>('tcp', 'udp', 'unspec'),
  addresses: fc.option(addresses, { nil: undefined }),
  tlvs: fc.array(tlv, { maxLength: 5 }),
  crc: fc.boolean(),
});

/** What decoding gives back for an encoded header: addresses only with PROXY, IPv6 in canonical text. */
function expected(h: { command: 'proxy' | 'local'; transport: ProxyHeader['transport']; addresses: ProxyHeader['addresses'] }, version: 1 | 2): Record<string, unknown> {
  const canonical = (e: Endpoint): Endpoint => (e.family === 6 ? { ...e, address: new URL(`http://[${e.address}]`).hostname.slice(1, -1) } : e);
  const kept = h.command === 'proxy' && h.addresses !== undefined ? { addresses: { source: canonical(h.addresses.source), destination: canonical(h.addresses.destination) } } : {};
  return { version, command: h.command, transport: h.addresses === undefined && version === 1 ? 'unspec' : h.transport, ...kept };
}

describe('PROXY header decoding, properties', () => {
  it('property: random, signature-led and mutated bytes give header/more/invalid, never a throw', () => {
    const good = encodeProxyHeaderV2({ command: 'proxy', transport: 'tcp', addresses: { source: { family: 4, address: '198.51.100.1', port: 1 }, destination: { family: 4, address: '203.0.113.1', port: 2 } }, tlvs: [{ type: 1, value: Buffer.from('h2') }] }, { crc32c: true });
    const v1 = Buffer.from('PROXY TCP6 2001:db8:1::10 2001:db8:2::20 40000 443\r\n');
    const mutate = (base: Buffer) =>
      fc.tuple(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(base.length + 10)).map(([edits, cut]) => {
        const copy = Buffer.concat([base, Buffer.alloc(10, 0x41)]);
        for (const [at, value] of edits) copy[at] = value;
        return copy.subarray(0, cut);
      });
    const led = fc.tuple(fc.constantFrom(Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), Buffer.from('PROXY ')), fc.uint8Array({ maxLength: 300 })).map(([a, b]) => Buffer.concat([a, b]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 3000 }), led, mutate(good), mutate(v1)), (bytes) => assertResult(decodeProxyHeader(bytes, DEFAULT_PROXY_LIMITS), bytes.length)),
      { seed: 0x1561, numRuns: PROPERTY_RUNS },
    );
  });

  it('property: a datagram (UDP mmproxy) decodes to header or invalid, never more and never a throw; the payload after the header is kept', () => {
    const udp = encodeProxyHeaderV2({ command: 'proxy', transport: 'udp', addresses: { source: { family: 6, address: '2001:db8:1::10', port: 5353 }, destination: { family: 6, address: '2001:db8:2::20', port: 53 } } });
    const mutated = fc.tuple(fc.array(fc.tuple(fc.nat(udp.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(udp.length + 40)).map(([edits, cut]) => {
      const copy = Buffer.concat([udp, Buffer.alloc(40, 0x42)]);
      for (const [at, value] of edits) copy[at] = value;
      return copy.subarray(0, cut);
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 1500 }), mutated), (bytes) => {
        const result = decodeProxyDatagram(bytes, DEFAULT_PROXY_LIMITS);
        assert.notEqual(result.kind, 'more');
        assertResult(result, bytes.length);
      }),
      { seed: 0x1562, numRuns: PROPERTY_RUNS },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (payload) => {
        const result = decodeProxyDatagram(Buffer.concat([udp, payload]), DEFAULT_PROXY_LIMITS);
        assert.equal(result.kind, 'header');
        if (result.kind === 'header') assert.equal(result.take, udp.length);
      }),
      { seed: 0x1563, numRuns: PROPERTY_RUNS },
    );
  });

  it('property: v2 round trip, with data after the header kept back, and every proper prefix is more', () => {
    fc.assert(
      fc.property(headerV2, fc.uint8Array({ maxLength: 30 }), (h, data) => {
        const encoded = encodeProxyHeaderV2(h, { crc32c: h.crc });
        const result = decodeProxyHeader(Buffer.concat([encoded, data]));
        assert.equal(result.kind, 'header', JSON.stringify(result));
        if (result.kind !== 'header') return;
        assert.equal(result.take, encoded.length);
        const { tlvs, ...rest } = result.header;
        assert.deepEqual(rest, expected(h, 2));
        const sent = [...h.tlvs, ...(h.crc ? [{ type: 3 }] : [])];
        assert.deepEqual(tlvs.map((t) => t.type), sent.map((t) => t.type));
        for (let cut = 0; cut < encoded.length; cut += 7) assert.deepEqual(decodeProxyHeader(encoded.subarray(0, cut)), { kind: 'more' });
      }),
      { seed: 0x1562, numRuns: 500 },
    );
  });

  it('property: v1 round trip for TCP over IPv4 and IPv6', () => {
    fc.assert(
      fc.property(addresses, fc.uint8Array({ maxLength: 30 }), (a, data) => {
        const encoded = encodeProxyHeaderV1({ command: 'proxy', transport: 'tcp', addresses: a });
        assert.ok(encoded.length <= 107);
        const result = decodeProxyHeader(Buffer.concat([encoded, data]));
        assert.deepEqual(result, { kind: 'header', take: encoded.length, header: { ...expected({ command: 'proxy', transport: 'tcp', addresses: a }, 1), tlvs: [] } });
      }),
      { seed: 0x1563, numRuns: 500 },
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PP2_TYPE } from '../../../src/core/proxy-protocol/header.js';
import { decodeProxyDatagram, decodeProxyHeader } from '../../../src/core/proxy-protocol/decode.js';
import { crc32c } from '../../../src/core/proxy-protocol/crc32c.js';
import { encodeProxyHeaderV2 } from '../../../src/core/proxy-protocol/v2.js';

const v4 = { source: { family: 4, address: '198.51.100.10', port: 40000 }, destination: { family: 4, address: '203.0.113.20', port: 80 } } as const;
const v6 = { source: { family: 6, address: '2001:db8:1::10', port: 40000 }, destination: { family: 6, address: '2001:db8:2::20', port: 443 } } as const;
const SIG = '0d0a0d0a000d0a515549540a';
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const invalid = (reason: string): unknown => ({ kind: 'invalid', reason });

describe('PROXY protocol v2', () => {
  it('encodes the exact bytes of the specification for TCP over IPv4, UDP over IPv6 and LOCAL', () => {
    assert.equal(hex(encodeProxyHeaderV2({ command: 'proxy', transport: 'tcp', addresses: v4 })), `${SIG}2111000c c63364 0a cb007114 9c40 0050`.replace(/\s+/g, ''));
    assert.equal(
      hex(encodeProxyHeaderV2({ command: 'proxy', transport: 'udp', addresses: v6 })),
      `${SIG}21220024 20010db8000100000000000000000010 20010db8000200000000000000000020 9c40 01bb`.replace(/\s+/g, ''),
    );
    assert.equal(hex(encodeProxyHeaderV2({ command: 'local', transport: 'unspec' })), `${SIG}20000000`);
  });

  it('appends TLVs, and a CRC32C over the whole header with its value zeroed', () => {
    const header = encodeProxyHeaderV2({ command: 'proxy', transport: 'tcp', addresses: v4, tlvs: [{ type: PP2_TYPE.AUTHORITY, value: Buffer.from('a.example') }] }, { crc32c: true });
    assert.equal(header.readUInt16BE(14), 12 + 3 + 9 + 3 + 4);
    assert.equal(hex(header.subarray(28, 40)), `0200 09${hex(Buffer.from('a.example'))}`.replace(/\s+/g, ''));
    const zeroed = Buffer.from(header);
    zeroed.fill(0, zeroed.length - 4);
    assert.equal(header.readUInt32BE(header.length - 4), crc32c(zeroed));
    assert.equal(decodeProxyHeader(header).kind, 'header');
  });

  it('CRC32C is Castagnoli (RFC 3720 B.4 check values)', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  });

  it('decodes addresses, TLVs (copies, unknown ones kept) and claims only the header', () => {
    const tlvs = [
      { type: PP2_TYPE.ALPN, value: Buffer.from('h2') },
      { type: 0xea, value: fromHex('01766970632d30') }, // AWS VPC endpoint id (private range)
      { type: 0x99, value: Buffer.alloc(0) }, // unknown, empty
    ];
    const header = encodeProxyHeaderV2({ command: 'proxy', transport: 'tcp', addresses: v6, tlvs });
    const offered = Buffer.concat([header, Buffer.from('client data')]);
    const result = decodeProxyHeader(offered);
    assert.equal(result.kind, 'header');
    if (result.kind !== 'header') return;
    assert.equal(result.take, header.length);
    assert.deepEqual(result.header.addresses, v6);
    assert.deepEqual(result.header.tlvs.map((t) => [t.type, hex(t.value)]), tlvs.map((t) => [t.type, hex(t.value)]));
    offered.fill(0);
    assert.equal(hex(result.header.tlvs[0]!.value), hex(Buffer.from('h2')), 'TLV values do not alias the offered buffer');
  });

  it('ignores the addresses of a LOCAL header, and accepts AF_UNSPEC with PROXY', () => {
    const local = Buffer.concat([fromHex(`${SIG}2011000c`), Buffer.alloc(12, 1)]);
    assert.deepEqual(decodeProxyHeader(local), { kind: 'header', take: 28, header: { version: 2, command: 'local', transport: 'tcp', tlvs: [] } });
    const localUnix = Buffer.concat([fromHex(`${SIG}203100d8`), Buffer.alloc(216)]);
    assert.equal(decodeProxyHeader(localUnix).kind, 'header');
    assert.deepEqual(decodeProxyHeader(fromHex(`${SIG}21000000`)), { kind: 'header', take: 16, header: { version: 2, command: 'proxy', transport: 'unspec', tlvs: [] } });
  });

  const good = encodeProxyHeaderV2({ command: 'proxy', transport: 'tcp', addresses: v4, tlvs: [{ type: PP2_TYPE.NOOP, value: Buffer.alloc(3) }] });
  const table: ReadonlyArray<readonly [string, Uint8Array, unknown]> = [
    ['a prefix of the signature', fromHex('0d0a0d0a00'), { kind: 'more' }],
    ['the fixed part only', good.subarray(0, 16), { kind: 'more' }],
    ['all but the last byte', good.subarray(0, good.length - 1), { kind: 'more' }],
    ['a wrong signature byte', fromHex('0d0a0d0a010d0a515549540a21110000'), invalid('bad-signature')],
    ['version 1 in the binary form', fromHex(`${SIG}1111000c`), invalid('v2-version')],
    ['version 3, told before the rest arrives', fromHex(`${SIG}31`), invalid('v2-version')],
    ['command 2', fromHex(`${SIG}2211000c`), invalid('v2-command')],
    ['family 4', fromHex(`${SIG}2141000c`), invalid('v2-family')],
    ['transport 3', fromHex(`${SIG}2113000c`), invalid('v2-family')],
    ['AF_UNIX with PROXY', fromHex(`${SIG}213100d8`), invalid('v2-family')],
    ['a length beyond the bound, refused before it arrives', fromHex(`${SIG}2111ffff`), invalid('v2-too-long')],
    ['a length too short for IPv4 addresses', fromHex(`${SIG}2111000b`), invalid('v2-address-truncated')],
    ['a length too short for IPv6 addresses', Buffer.concat([fromHex(`${SIG}21210023`), Buffer.alloc(35)]), invalid('v2-address-truncated')],
    ['a TLV running past the header', Buffer.concat([fromHex(`${SIG}21110010`), Buffer.alloc(12), fromHex('010005aa')]), invalid('v2-tlv-malformed')],
    ['a TLV header cut short', Buffer.concat([fromHex(`${SIG}2111000e`), Buffer.alloc(12), fromHex('0100')]), invalid('v2-tlv-malformed')],
    ['a CRC32C of 3 bytes', Buffer.concat([fromHex(`${SIG}21110012`), Buffer.alloc(12), fromHex('030003000000')]), invalid('v2-tlv-malformed')],
    ['a UNIQUE_ID of 129 bytes', Buffer.concat([fromHex(`${SIG}21110090`), Buffer.alloc(12), fromHex('050081'), Buffer.alloc(129)]), invalid('v2-tlv-malformed')],
    ['a CRC32C that does not match', Buffer.concat([fromHex(`${SIG}21110013`), Buffer.alloc(12), fromHex('03000400000000')]), invalid('v2-crc32c-mismatch')],
  ];
  for (const [what, bytes, expected] of table) {
    it(`${what}: ${JSON.stringify(expected)}`, () => assert.deepEqual(decodeProxyHeader(bytes), expected));
  }

  it('bounds the header at the configured size', () => {
    const big = encodeProxyHeaderV2({ command: 'proxy', transport: 'tcp', addresses: v4, tlvs: [{ type: PP2_TYPE.NOOP, value: Buffer.alloc(100) }] });
    assert.equal(decodeProxyHeader(big, { maxV2Bytes: big.length }).kind, 'header');
    assert.deepEqual(decodeProxyHeader(big, { maxV2Bytes: big.length - 1 }), invalid('v2-too-long'));
    assert.deepEqual(decodeProxyHeader(big.subarray(0, 16), { maxV2Bytes: big.length - 1 }), invalid('v2-too-long'));
  });

  it('datagrams: a v2 header then the payload; a cut header is truncated; v1 is refused', () => {
    const header = encodeProxyHeaderV2({ command: 'proxy', transport: 'udp', addresses: v4 });
    const result = decodeProxyDatagram(Buffer.concat([header, Buffer.from('payload')]));
    assert.equal(result.kind === 'header' && result.take, header.length);
    assert.deepEqual(decodeProxyDatagram(header.subarray(0, 20)), invalid('truncated'));
    assert.deepEqual(decodeProxyDatagram(Buffer.alloc(0)), invalid('truncated'));
    assert.deepEqual(decodeProxyDatagram(Buffer.from('PROXY TCP4 1.2.3.4 1.2.3.5 1 2\r\n')), invalid('v1-datagram'));
  });
});

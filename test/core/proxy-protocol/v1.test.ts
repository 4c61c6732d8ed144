import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeProxyHeader } from '../../../src/core/proxy-protocol/decode.js';
import { encodeProxyHeaderV1 } from '../../../src/core/proxy-protocol/v1.js';
import { isTproxyError } from '../../../src/core/errors.js';

const v4 = { source: { family: 4, address: '198.51.100.10', port: 40000 }, destination: { family: 4, address: '203.0.113.20', port: 80 } } as const;
const v6 = { source: { family: 6, address: '2001:db8:1::10', port: 40000 }, destination: { family: 6, address: '2001:db8:2::20', port: 443 } } as const;
const decode = (text: string): unknown => decodeProxyHeader(Buffer.from(text, 'latin1'));
const invalid = (reason: string): unknown => ({ kind: 'invalid', reason });
const FULL6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';

describe('PROXY protocol v1', () => {
  it('encodes TCP4, TCP6 and UNKNOWN lines as the specification writes them', () => {
    assert.equal(encodeProxyHeaderV1({ command: 'proxy', transport: 'tcp', addresses: v4 }).toString(), 'PROXY TCP4 198.51.100.10 203.0.113.20 40000 80\r\n');
    assert.equal(encodeProxyHeaderV1({ command: 'proxy', transport: 'tcp', addresses: v6 }).toString(), 'PROXY TCP6 2001:db8:1::10 2001:db8:2::20 40000 443\r\n');
    assert.equal(encodeProxyHeaderV1({ command: 'proxy', transport: 'unspec' }).toString(), 'PROXY UNKNOWN\r\n');
  });

  it('refuses what v1 cannot say: LOCAL, UDP, mixed families', () => {
    const refused = (f: () => unknown, text: string): void => assert.throws(f, (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && e.message.includes(text));
    refused(() => encodeProxyHeaderV1({ command: 'local', transport: 'unspec' }), 'use v2');
    refused(() => encodeProxyHeaderV1({ command: 'proxy', transport: 'udp', addresses: v4 }), 'use v2');
    refused(() => encodeProxyHeaderV1({ command: 'proxy', transport: 'tcp', addresses: { source: v4.source, destination: v6.destination } }), 'one family');
  });

  it('decodes what it encodes, claiming only the line (the client data after it stays)', () => {
    for (const addresses of [v4, v6]) {
      const line = encodeProxyHeaderV1({ command: 'proxy', transport: 'tcp', addresses });
      const withData = Buffer.concat([line, Buffer.from('GET / HTTP/1.1\r\n\r\n')]);
      assert.deepEqual(decodeProxyHeader(withData), { kind: 'header', take: line.length, header: { version: 1, command: 'proxy', transport: 'tcp', addresses, tlvs: [] } });
    }
  });

  const table: ReadonlyArray<readonly [string, string, unknown]> = [
    ['the longest TCP4 line', 'PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n', 'header'],
    ['the longest TCP6 line (104 bytes)', `PROXY TCP6 ${FULL6} ${FULL6} 65535 65535\r\n`, 'header'],
    ['UNKNOWN with addresses, 107 bytes', `PROXY UNKNOWN ${FULL6} ${FULL6} 65535 65535\r\n`, 'header'],
    ['an IPv6 address in canonical form', 'PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 1 2\r\n', 'header'],
    ['nothing', '', { kind: 'more' }],
    ['a prefix of the signature', 'PROX', { kind: 'more' }],
    ['a line cut before CRLF', 'PROXY TCP4 198.51.100.10 203.0.113.20 40000 80', { kind: 'more' }],
    ['a line cut between CR and LF', 'PROXY TCP4 198.51.100.10 203.0.113.20 40000 80\r', { kind: 'more' }],
    ['no CRLF within 107 bytes', `PROXY UNKNOWN ${'x'.repeat(100)}`, invalid('v1-no-crlf')],
    ['a bare LF', 'PROXY TCP4 198.51.100.10 203.0.113.20 40000 80\n', { kind: 'more' }],
    ['CR followed by something else', 'PROXY TCP4 1.2.3.4 1.2.3.5 1 2\rX', invalid('v1-no-crlf')],
    ['a lower-case signature', 'proxy TCP4 1.2.3.4 1.2.3.5 1 2\r\n', invalid('bad-signature')],
    ['PROXY without the space', 'PROXYTCP4', invalid('bad-signature')],
    ['TCP5', 'PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n', invalid('v1-malformed')],
    ['UDP4 (not in v1)', 'PROXY UDP4 1.2.3.4 1.2.3.5 1 2\r\n', invalid('v1-malformed')],
    ['an IPv6 address on TCP4', 'PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n', invalid('v1-malformed')],
    ['an IPv4 address on TCP6', 'PROXY TCP6 1.2.3.4 1.2.3.5 1 2\r\n', invalid('v1-malformed')],
    ['a port of 65536', 'PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n', invalid('v1-malformed')],
    ['a port with a leading zero', 'PROXY TCP4 1.2.3.4 1.2.3.5 080 2\r\n', invalid('v1-malformed')],
    ['a negative port', 'PROXY TCP4 1.2.3.4 1.2.3.5 -1 2\r\n', invalid('v1-malformed')],
    ['two spaces', 'PROXY TCP4  1.2.3.4 1.2.3.5 1 2\r\n', invalid('v1-malformed')],
    ['a missing port', 'PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n', invalid('v1-malformed')],
    ['a trailing field', 'PROXY TCP4 1.2.3.4 1.2.3.5 1 2 3\r\n', invalid('v1-malformed')],
    ['an IPv4 address with 3 parts', 'PROXY TCP4 1.2.3 1.2.3.5 1 2\r\n', invalid('v1-malformed')],
    ['a zone id', 'PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n', invalid('v1-malformed')],
    ['a control character', 'PROXY TCP4 1.2.3.4\t1.2.3.5 1 2\r\n', invalid('v1-malformed')],
    ['TCP4 with nothing else', 'PROXY TCP4\r\n', invalid('v1-malformed')],
  ];
  for (const [what, text, expected] of table) {
    it(`${what}: ${JSON.stringify(expected)}`, () => {
      const result = decode(text) as { kind: string; take?: number };
      if (expected === 'header') {
        assert.equal(result.kind, 'header', JSON.stringify(result));
        assert.equal(result.take, text.length);
      } else assert.deepEqual(result, expected);
    });
  }

  it('reads the IPv6 address in its canonical text', () => {
    const result = decode('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 1 2\r\n') as { header: { addresses: { source: { address: string } } } };
    assert.equal(result.header.addresses.source.address, '2001:db8::1');
  });
});

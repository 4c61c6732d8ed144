import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_STREAM_SNIFF_BYTES, sniffStream } from '../../../src/core/sniff/stream.js';
import { clientHelloMessage, inRecords, serverNameExtension } from '../../helpers/client-hello.js';
import { PROPERTY_RUNS, assertSniffResult } from '../../helpers/sniff.js';

const TLS = inRecords(clientHelloMessage({ extensions: [serverNameExtension({ name: 'tls.example' })] }));
const HTTP = Buffer.from('GET / HTTP/1.1\r\nHost: http.example\r\n\r\n');

describe('stream sniffing (TLS, then HTTP)', () => {
  const table: ReadonlyArray<readonly [string, Uint8Array, unknown]> = [
    ['a TLS ClientHello', TLS, { kind: 'name', name: 'tls.example', protocol: 'tls' }],
    ['an HTTP request', HTTP, { kind: 'name', name: 'http.example', protocol: 'http' }],
    ['nothing yet: either may follow', Buffer.alloc(0), { kind: 'more' }],
    ['half a ClientHello', TLS.subarray(0, 20), { kind: 'more' }],
    ['half a request', HTTP.subarray(0, 20), { kind: 'more' }],
    ['a ClientHello without a name', inRecords(clientHelloMessage({ extensions: [] })), { kind: 'none' }],
    ['an SSH client banner', Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'), { kind: 'none' }],
    ['a PROXY v2 signature', Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), { kind: 'none' }],
  ];
  for (const [what, bytes, expected] of table) {
    it(`${what}: ${JSON.stringify(expected)}`, () => assert.deepEqual(sniffStream(bytes), expected));
  }

  it('peeking MAX_STREAM_SNIFF_BYTES is enough for a final answer', () => {
    assert.deepEqual(sniffStream(Buffer.alloc(MAX_STREAM_SNIFF_BYTES, 'A')), { kind: 'none' });
    const endless = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nX: '), Buffer.alloc(MAX_STREAM_SNIFF_BYTES, 'x')]);
    assert.deepEqual(sniffStream(endless.subarray(0, MAX_STREAM_SNIFF_BYTES)), { kind: 'none' });
  });

  it('property: never a throw, and more only for a prefix of TLS or HTTP', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 4000 }), fc.nat(TLS.length).map((n) => TLS.subarray(0, n)), fc.nat(HTTP.length).map((n) => HTTP.subarray(0, n))), (bytes) => {
        const result = sniffStream(bytes);
        assertSniffResult(result);
        if (result.kind === 'more') assert.ok(bytes.length === 0 || bytes[0] === 22 || (bytes[0]! >= 0x41 && bytes[0]! <= 0x5a) || bytes[0] === 0x2d || bytes[0] === 0x5f);
      }),
      { seed: 0x15c1, numRuns: PROPERTY_RUNS },
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { dnsNameFromBytes, normalizeDnsName } from '../../../src/core/sniff/dns-name.js';
import { SAFE_NAME } from '../../helpers/sniff.js';


/** Name characters, with a few hostile ones mixed in. */
const NAMEISH = fc.constantFrom('a', 'Z', '0', '9', '-', '_', '.', '.', ' ', '\r', '\n', '\0', '"', ':', 'é', '\u2028');

describe('DNS name normalisation', () => {
  const cases: ReadonlyArray<readonly [string, string | undefined, string]> = [
    ['example.com', 'example.com', 'plain name'],
    ['WWW.Example.COM.', 'www.example.com', 'case folded, one trailing dot dropped'],
    ['localhost', 'localhost', 'a single label'],
    ['_dmarc.example.com', '_dmarc.example.com', 'underscore'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', 'an A-label'],
    [`${'a'.repeat(63)}.example`, `${'a'.repeat(63)}.example`, 'a 63-character label'],
    [`${'a'.repeat(64)}.example`, undefined, 'a 64-character label'],
    [Array.from({ length: 4 }, () => 'a'.repeat(62)).join('.').slice(0, 253), Array.from({ length: 4 }, () => 'a'.repeat(62)).join('.').slice(0, 253), '253 characters'],
    [`${'a.'.repeat(127)}a`, undefined, '255 characters'],
    ['', undefined, 'empty'],
    ['.', undefined, 'only the root dot'],
    ['example.com..', undefined, 'two trailing dots'],
    ['a..b', undefined, 'an empty label'],
    ['.example.com', undefined, 'a leading dot'],
    ['evil.com\r\nx-injected: 1', undefined, 'CR LF'],
    ['evil\u0000.com', undefined, 'NUL'],
    ['ex ample.com', undefined, 'space'],
    ['"quoted".com', undefined, 'quote'],
    ['bücher.example', undefined, 'a U-label (not A-label)'],
    ['203.0.113.20', undefined, 'an IPv4 literal'],
    ['2001:db8::1', undefined, 'an IPv6 literal'],
    ['host.123', undefined, 'a numeric top-level label'],
    ['123.example', '123.example', 'a numeric first label'],
  ];
  for (const [input, expected, what] of cases) {
    it(`${what}: ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}...` : input)}`, () => {
      assert.equal(normalizeDnsName(input), expected);
      assert.equal(dnsNameFromBytes(Buffer.from(input, 'latin1'), 0, Buffer.byteLength(input, 'latin1')), input.length === Buffer.byteLength(input, 'latin1') ? expected : undefined);
    });
  }

  it('reads only the given range of a larger buffer', () => {
    const buf = Buffer.from('xxWWW.EXAMPLE.ORGyy');
    assert.equal(dnsNameFromBytes(buf.subarray(1), 1, 16), 'www.example.org');
  });

  it('property: anything accepted is a safe lower-case name and normalising it again is the identity', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: NAMEISH, maxLength: 80 }), fc.string({ unit: NAMEISH, minLength: 240, maxLength: 270 })), (text) => {
        const name = normalizeDnsName(text);
        if (name === undefined) return;
        assert.match(name, SAFE_NAME);
        assert.equal(normalizeDnsName(name), name);
      }),
      { seed: 0x15d5, numRuns: 2000 },
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_HTTP_SNIFF_BYTES, sniffHttpHost } from '../../../src/core/sniff/http-host.js';
import { PROPERTY_RUNS, assertSniffResult } from '../../helpers/sniff.js';

const name = (n: string): unknown => ({ kind: 'name', name: n, protocol: 'http' });
const MORE = { kind: 'more' };
const NONE = { kind: 'none' };
const sniff = (text: string): unknown => sniffHttpHost(Buffer.from(text, 'latin1'));
/** What curl 7.88 sends for `curl http://www.example.com:8080/path`. */
const CURL = 'GET /path HTTP/1.1\r\nHost: www.example.com:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n';

describe('HTTP/1 Host', () => {
  const table: ReadonlyArray<readonly [string, string, unknown]> = [
    ['curl, port stripped', CURL, name('www.example.com')],
    ['HTTP/1.0 with Host', 'GET / HTTP/1.0\r\nHost: old.example\r\n\r\n', name('old.example')],
    ['bare LF line ends', 'GET / HTTP/1.1\nHost: lf.example\n\n', name('lf.example')],
    ['Host in any case, OWS around the value, upper-case name', 'POST /x HTTP/1.1\r\nContent-Length: 0\r\nhOsT:\t  WWW.Example.ORG. \r\n\r\n', name('www.example.org')],
    ['absolute-form target (a proxy request)', 'GET http://abs.example/ HTTP/1.1\r\nHost: abs.example\r\n\r\n', name('abs.example')],
    ['CONNECT authority-form', 'CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n', name('tunnel.example')],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: star.example\r\n\r\n', name('star.example')],
    ['body bytes after the head are not looked at', 'POST / HTTP/1.1\r\nHost: b.example\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0', name('b.example')],
    ['an IPv6 literal with a port', 'GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n', NONE],
    ['an IPv6 literal', 'GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n', NONE],
    ['an IPv4 literal with a port', 'GET / HTTP/1.1\r\nHost: 203.0.113.20:80\r\n\r\n', NONE],
    ['no Host (HTTP/1.0)', 'GET / HTTP/1.0\r\nAccept: */*\r\n\r\n', NONE],
    ['an empty Host', 'GET / HTTP/1.1\r\nHost: \r\n\r\n', NONE],
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n', NONE],
    ['a port that is not a number', 'GET / HTTP/1.1\r\nHost: a.example:http\r\n\r\n', NONE],
    ['a port over 65535', 'GET / HTTP/1.1\r\nHost: a.example:65536\r\n\r\n', NONE],
    ['an empty port', 'GET / HTTP/1.1\r\nHost: a.example:\r\n\r\n', NONE],
    ['userinfo in Host', 'GET / HTTP/1.1\r\nHost: user@a.example\r\n\r\n', NONE],
    ['a control character in the Host value (log injection)', 'GET / HTTP/1.1\r\nHost: a.example\u001b[31m\r\n\r\n', NONE],
    ['a CR not followed by LF', 'GET / HTTP/1.1\r\nHost: a.example\rX-Forged: 1\r\n\r\n', NONE],
    ['a space before the colon', 'GET / HTTP/1.1\r\nHost : a.example\r\n\r\n', NONE],
    ['a folded line', 'GET / HTTP/1.1\r\nHost: a.example\r\n  more\r\n\r\n', NONE],
    ['a field line without a colon', 'GET / HTTP/1.1\r\nHost a.example\r\n\r\n', NONE],
    ['HTTP/2 prior knowledge', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', NONE],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: a.example\r\n\r\n', NONE],
    ['a lower-case method', 'get / HTTP/1.1\r\nHost: a.example\r\n\r\n', NONE],
    ['a TLS record, told from its first byte', '\u0016', NONE],
    ['an SSH banner', 'SSH-2.0-OpenSSH_9.2\r\n', NONE],
    ['an SMTP command told at the version', 'EHLO mail.example\r\n', NONE],
    ['a request line without a version', 'GET /\r\n\r\n', NONE],
    ['nothing yet', '', MORE],
    ['a method so far', 'GE', MORE],
    ['a target so far', 'GET /index', MORE],
    ['part of the version', 'GET / HTT', MORE],
    ['a request line', 'GET / HTTP/1.1\r\n', MORE],
    ['a request line cut between CR and LF', 'GET / HTTP/1.1\r', MORE],
    ['Host seen, but not the end of the head', 'GET / HTTP/1.1\r\nHost: a.example\r\n', MORE],
  ];
  for (const [what, text, expected] of table) {
    it(`${what}: ${JSON.stringify(expected)}`, () => assert.deepEqual(sniff(text), expected));
  }

  it('says more for every proper prefix of a request head, and the name once it is complete', () => {
    for (let length = 0; length < CURL.length; length++) assert.deepEqual(sniff(CURL.slice(0, length)), MORE, `prefix of ${length}`);
  });

  it('gives up on a head that does not end within the bound', () => {
    const big = `GET / HTTP/1.1\r\nHost: big.example\r\nCookie: ${'c'.repeat(MAX_HTTP_SNIFF_BYTES)}\r\n\r\n`;
    assert.deepEqual(sniff(big.slice(0, MAX_HTTP_SNIFF_BYTES - 1)), MORE);
    assert.deepEqual(sniff(big.slice(0, MAX_HTTP_SNIFF_BYTES)), NONE);
    assert.deepEqual(sniff(big), NONE);
    assert.deepEqual(sniff('A'.repeat(21)), NONE, 'a method longer than any real one');
  });

  it('property: random, HTTP-looking and mutated requests give a SniffResult, never a throw', () => {
    const headerText = fc.string({ unit: fc.constantFrom('a', 'H', 'o', 's', 't', ':', ' ', '\t', '\r', '\n', '[', ']', '.', '1', '\u0000', '\u007f', 'é'), maxLength: 200 });
    const httpLooking = headerText.map((rest) => Buffer.from(`GET / HTTP/1.1\r\nHost: ${rest}`, 'latin1'));
    const mutated = fc.array(fc.tuple(fc.nat(CURL.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }).map((edits) => {
      const copy = Buffer.from(CURL, 'latin1');
      for (const [at, value] of edits) copy[at] = value;
      return copy;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 20000 }), httpLooking, mutated), (bytes) => assertSniffResult(sniffHttpHost(bytes), 'http')),
      { seed: 0x15b1, numRuns: PROPERTY_RUNS },
    );
  });

  it('property: a valid request head with other fields around Host gives its name, and its prefixes more', () => {
    const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,15}$/);
    const field = fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/), fc.stringMatching(/^[ -~]{0,40}$/)).filter(([n]) => n.toLowerCase() !== 'host');
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 4 }), fc.array(field, { maxLength: 6 }), fc.array(field, { maxLength: 6 }), fc.option(fc.integer({ min: 0, max: 65535 })), fc.constantFrom('\r\n', '\n'), (labels, before, after, port, eol) => {
        const host = `${labels.join('.')}.example`;
        const fields = [...before, ['Host', port === null ? host : `${host}:${port}`], ...after].map(([n, v]) => `${n}: ${v}${eol}`).join('');
        const head = `GET /x HTTP/1.1${eol}${fields}${eol}`;
        assert.deepEqual(sniff(head), name(host));
        assert.deepEqual(sniff(head.slice(0, head.length - 1)), MORE);
      }),
      { seed: 0x15b2, numRuns: 500 },
    );
  });
});

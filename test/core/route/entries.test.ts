// Route entries: prefixes and names in canonical form, list files with every bad line at its line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseListFile, parseNameEntry, parsePrefixEntry } from '../../../src/core/route/entries.js';

describe('route entries', () => {
  it('canonical prefixes: bare addresses are full-length, IPv6 compressed', () => {
    assert.deepEqual(['10.0.0.0/8', '192.0.2.7', '2001:DB8:0::/32'].map(parsePrefixEntry), ['10.0.0.0/8', '192.0.2.7/32', '2001:db8::/32']);
  });

  it('names: lower case, trailing dot dropped, *.x and .x are one suffix, +.x the domain too', () => {
    assert.deepEqual(['Example.COM.', '*.example.com', '.example.com', '+.example.com', 'xn--bcher-kva.example'].map(parseNameEntry), ['example.com', '.example.com', '.example.com', '+.example.com', 'xn--bcher-kva.example']);
    for (const bad of ['', '*.', 'a..b', 'a.*.example', 'a b.example', '192.0.2.1', `${'a'.repeat(64)}.example`]) assert.throws(() => parseNameEntry(bad), /^TproxyError: name: is not a domain entry/, bad);
  });

  it('a list file: comments and blanks skipped, at most 10 bad lines then a count', () => {
    const text = ['# header', '', 'a.example # trailing', ...Array.from({ length: 12 }, () => 'bad name!')].join('\n');
    const { entries, problems } = parseListFile('names', 'l.txt', text);
    assert.deepEqual(entries, ['a.example']);
    assert.equal(problems.length, 11);
    assert.match(problems[0] ?? '', /^l\.txt:4: "bad name!" is not a domain entry: use example\.com/);
    assert.equal(problems[10], 'l.txt: and 2 more bad lines');
  });
});

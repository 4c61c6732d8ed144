import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DomainSet, parseDomainEntry, type DomainEntry } from '../../../src/core/sniff/domain-set.js';
import { isTproxyError } from '../../../src/core/errors.js';

describe('DomainSet', () => {
  const set = DomainSet.from(['exact.example', '*.star.example', '.dot.example', '+.plus.example', 'Upper.EXAMPLE.', '  spaced.example  ', '*.com']);
  const table: ReadonlyArray<readonly [string, boolean]> = [
    ['exact.example', true],
    ['www.exact.example', false],
    ['star.example', false],
    ['www.star.example', true],
    ['a.b.c.star.example', true],
    ['xstar.example', false],
    ['dot.example', false],
    ['www.dot.example', true],
    ['plus.example', true],
    ['a.plus.example', true],
    ['upper.example', true],
    ['spaced.example', true],
    ['anything.com', true],
    ['com', false],
    ['example', false],
    ['', false],
  ];
  for (const [name, expected] of table) {
    it(`${JSON.stringify(name)}: ${expected}`, () => assert.equal(set.has(name), expected));
  }

  it('parses each form, and counts entries', () => {
    assert.deepEqual(parseDomainEntry('*.Example.com'), { domain: 'example.com', match: 'subdomains' });
    assert.deepEqual(parseDomainEntry('.example.com'), { domain: 'example.com', match: 'subdomains' });
    assert.deepEqual(parseDomainEntry('+.example.com'), { domain: 'example.com', match: 'domain-and-subdomains' });
    assert.deepEqual(parseDomainEntry('example.com.'), { domain: 'example.com', match: 'exact' });
    assert.equal(set.size, 7);
    assert.equal(DomainSet.empty.has('example.com'), false);
  });

  for (const bad of ['', '*', '*.', '..example.com', '*.*.example.com', 'ex ample.com', 'a.example.com/path', '203.0.113.20', '2001:db8::1', 'évil.example', 'evil\n.example', 'example.com..']) {
    it(`refuses ${JSON.stringify(bad)}, naming it and the accepted forms`, () => {
      assert.throws(
        () => DomainSet.from(['good.example', bad]),
        (error: unknown) => isTproxyError(error, 'ERR_INVALID_ARGUMENT') && error.message.includes(JSON.stringify(bad)) && error.message.includes('+.example.com') && error.details.entry === bad,
      );
    });
  }

  it('property: agrees with a linear scan over the entries', () => {
    const label = fc.constantFrom('a', 'b', 'c', 'ab', 'example', 'com', 'x-y');
    const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.'));
    const entry = fc.record({ domain, match: fc.constantFrom<DomainEntry['match']>('exact', 'subdomains', 'domain-and-subdomains') });
    const matches = (name: string, { domain: d, match }: DomainEntry): boolean =>
      (match !== 'subdomains' && name === d) || (match !== 'exact' && name.endsWith(`.${d}`));
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 30 }), fc.array(domain, { minLength: 1, maxLength: 20 }), (entries, names) => {
        const domains = DomainSet.fromEntries(entries);
        for (const name of names) assert.equal(domains.has(name), entries.some((e) => matches(name, e)), name);
      }),
      { seed: 0x15e1, numRuns: 1000 },
    );
  });
});

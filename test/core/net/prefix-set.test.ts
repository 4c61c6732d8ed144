import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isTproxyError } from '../../../src/core/errors.js';
import { familyBits, parseAddress } from '../../../src/core/net/address.js';
import { type Prefix, formatPrefix, prefixEnd } from '../../../src/core/net/prefix.js';
import { PrefixSet, uncovered } from '../../../src/core/net/prefix-set.js';

describe('PrefixSet', () => {
  it('holds IPv4 and IPv6 prefixes and bare addresses, answering membership', () => {
    const set = PrefixSet.from(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '198.51.100.128/25']);
    for (const yes of ['10.0.0.0', '10.255.255.255', '192.0.2.7', '2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '198.51.100.200']) assert.ok(set.has(yes), yes);
    for (const no of ['9.255.255.255', '11.0.0.0', '192.0.2.6', '192.0.2.8', '2001:db9::', '198.51.100.127', 'not an address', '10.0.0.1/32', '']) assert.ok(!set.has(no), no);
    assert.equal(set.size, 4);
  });

  it('takes a parsed address for lookups (one parse, many sets)', () => {
    const key = parseAddress('2001:db8::5');
    assert.ok(key);
    assert.ok(PrefixSet.from(['2001:db8::/64']).has(key));
    assert.ok(!PrefixSet.from(['192.0.2.0/24']).has(key));
  });

  it('counts prefixes without duplicates and covered ones, and merges adjacent ones into one interval', () => {
    const set = PrefixSet.from(['10.0.0.0/8', '10.1.0.0/16', '10.0.0.0/8', '192.0.2.0/25', '192.0.2.128/25', '::/0', '2001:db8::/32']);
    assert.equal(set.size, 4);
    assert.deepEqual(set.toStrings(), ['10.0.0.0/8', '192.0.2.0/25', '192.0.2.128/25', '::/0']);
    assert.deepEqual(set.intervalCount, { 4: 2, 6: 1 });
  });

  it('answers covers and overlaps for prefixes', () => {
    const set = PrefixSet.from(['192.0.2.0/25', '192.0.2.128/25', '198.51.100.0/24']);
    assert.ok(set.covers('192.0.2.0/24'), 'two adjacent halves cover the whole');
    assert.ok(!set.covers('192.0.0.0/16'));
    assert.ok(set.overlaps('192.0.0.0/16'));
    assert.ok(set.overlaps('198.51.100.77'));
    assert.ok(!set.overlaps('203.0.113.0/24'));
    assert.ok(!set.covers('2001:db8::/32'));
  });

  it('subtracts one set from another as the fewest prefixes', () => {
    const a = PrefixSet.from(['192.0.2.0/24', '2001:db8::/126']);
    const b = PrefixSet.from(['192.0.2.64/26', '192.0.2.255', '2001:db8::1']);
    assert.deepEqual(a.minus(b).toStrings(), ['192.0.2.0/26', '192.0.2.128/26', '192.0.2.192/27', '192.0.2.224/28', '192.0.2.240/29', '192.0.2.248/30', '192.0.2.252/31', '192.0.2.254/32', '2001:db8::/128', '2001:db8::2/127']);
    assert.ok(a.intersects(b));
    assert.ok(!a.minus(b).intersects(b));
    assert.equal(PrefixSet.from(['0.0.0.0/0']).minus(PrefixSet.from(['0.0.0.0/0'])).size, 0);
  });

  for (const [text, message] of [
    ['10.0.0/8', /"10.0.0\/8" is not an IPv4 or IPv6 address/],
    ['10.0.0.1/33', /invalid prefix length \(0-32 for IPv4\)/],
    ['10.0.0.0/8/9', /is not a CIDR prefix/],
    ['2001:db8::1/32', /did you mean 2001:db8::\/32\?/],
    ['010.0.0.0/8', /is not an IPv4 or IPv6 address/],
  ] as const) {
    it(`refuses "${text}", naming the entry and the field`, () => {
      assert.throws(() => PrefixSet.from(['192.0.2.0/24', text], 'routes'), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && e.details.field === 'routes' && message.test(e.message) && e.message.startsWith('routes: '));
    });
  }

  it('quotes at most 200 characters of a bad entry', () => {
    const huge = `1${'0'.repeat(100_000)}`;
    assert.throws(() => PrefixSet.from([huge]), (e: unknown) => isTproxyError(e) && e.message.length < 400 && /\(100001 characters\)/.test(e.message));
  });
});

// A small address space (prefixes inside 192.0.2.0/24 and 2001:db8::/120) so that random sets
// overlap, nest and touch often; the naive model checks every prefix of the list.
const prefixArbitrary: fc.Arbitrary<Prefix> = fc.oneof(
  fc.tuple(fc.integer({ min: 24, max: 32 }), fc.integer({ min: 0, max: 255 })).map(([length, low]) => ({ family: 4 as const, start: ((0xc0000200n | BigInt(low)) >> BigInt(32 - length)) << BigInt(32 - length), length })),
  fc.tuple(fc.integer({ min: 120, max: 128 }), fc.integer({ min: 0, max: 255 })).map(([length, low]) => ({ family: 6 as const, start: (((0x20010db8n << 96n) | BigInt(low)) >> BigInt(128 - length)) << BigInt(128 - length), length })),
);
const addressArbitrary = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((low) => ({ family: 4 as const, value: 0xc0000200n | BigInt(low) })),
  fc.integer({ min: 0, max: 255 }).map((low) => ({ family: 6 as const, value: (0x20010db8n << 96n) | BigInt(low) })),
);
const naiveHas = (prefixes: readonly Prefix[], family: 4 | 6, value: bigint): boolean => prefixes.some((p) => p.family === family && value >= p.start && value <= prefixEnd(p));
const naiveContains = (outer: Prefix, inner: Prefix): boolean => outer.family === inner.family && outer.start <= inner.start && prefixEnd(inner) <= prefixEnd(outer);
const PROPERTY = { seed: 1313, numRuns: 300 };

describe('PrefixSet against a naive list', () => {
  it('has() agrees with checking every prefix', () => {
    fc.assert(
      fc.property(fc.array(prefixArbitrary, { maxLength: 30 }), fc.array(addressArbitrary, { minLength: 1, maxLength: 20 }), (prefixes, addresses) => {
        const set = PrefixSet.from(prefixes.map(formatPrefix));
        for (const a of addresses) assert.equal(set.has(a), naiveHas(prefixes, a.family, a.value));
      }),
      PROPERTY,
    );
  });

  it('keeps exactly the prefixes no other one covers (first of duplicates)', () => {
    fc.assert(
      fc.property(fc.array(prefixArbitrary, { maxLength: 30 }), (prefixes) => {
        const keep = uncovered(prefixes);
        prefixes.forEach((p, i) => {
          const covered = prefixes.some((q, j) => j !== i && naiveContains(q, p) && (q.length < p.length || j < i));
          assert.equal(keep[i], !covered, `${formatPrefix(p)} at ${i}`);
        });
      }),
      PROPERTY,
    );
  });

  it('covers, overlaps and minus agree with address-by-address checks', () => {
    fc.assert(
      fc.property(fc.array(prefixArbitrary, { maxLength: 20 }), fc.array(prefixArbitrary, { maxLength: 20 }), prefixArbitrary, (as, bs, probe) => {
        const a = PrefixSet.of(as);
        const b = PrefixSet.of(bs);
        const addresses: bigint[] = [];
        for (let v = probe.start; v <= prefixEnd(probe); v++) addresses.push(v);
        assert.equal(a.covers(probe), addresses.every((v) => naiveHas(as, probe.family, v)));
        assert.equal(a.overlaps(probe), addresses.some((v) => naiveHas(as, probe.family, v)));
        const difference = a.minus(b);
        const union = a.union(b);
        let shared = false;
        for (const family of [4, 6] as const) {
          const base = family === 4 ? 0xc0000200n : 0x20010db8n << 96n;
          for (let low = 0n; low < 256n; low++) {
            const value = base | low;
            const inA = naiveHas(as, family, value);
            const inB = naiveHas(bs, family, value);
            assert.equal(difference.has({ family, value }), inA && !inB);
            assert.equal(union.has({ family, value }), inA || inB);
            shared ||= inA && inB;
          }
        }
        assert.equal(a.intersects(b), shared);
        // The fewest prefixes: no two of the difference could be one (siblings of one parent).
        const parts = difference.prefixes();
        for (const p of parts) {
          const bits = BigInt(familyBits(p.family) - p.length);
          const sibling = p.start ^ (1n << bits);
          assert.ok(!parts.some((q) => q.family === p.family && q.length === p.length && q.start === sibling), `${formatPrefix(p)} and its sibling`);
        }
      }),
      PROPERTY,
    );
  });

  it('parses and formats addresses back to the canonical text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const key = parseAddress(text);
        if (text.includes('.') && !text.includes(':')) {
          assert.ok(key, text);
        }
        if (key) assert.deepEqual(parseAddress(PrefixSet.of([{ family: key.family, start: key.value, length: familyBits(key.family) }]).toStrings()[0]?.split('/')[0] ?? ''), key);
      }),
      PROPERTY,
    );
  });
});

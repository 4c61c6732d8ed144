import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTproxyError } from '../../../src/core/errors.js';
import { bypassCidrs, formatCidr, parseCidr } from '../../../src/core/rules/cidr.js';

describe('CIDR prefixes', () => {
  it('parses IPv4 and IPv6 prefixes and bare addresses into canonical form', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8', 'f'), { family: 4, address: '10.0.0.0', length: 8 });
    assert.deepEqual(parseCidr('192.0.2.7', 'f'), { family: 4, address: '192.0.2.7', length: 32 });
    assert.deepEqual(parseCidr('2001:DB8:0:0::/32', 'f'), { family: 6, address: '2001:db8::', length: 32 });
    assert.equal(formatCidr(parseCidr('::1', 'f')), '::1/128');
    assert.equal(formatCidr(parseCidr('0.0.0.0/0', 'f')), '0.0.0.0/0');
  });

  for (const [text, message] of [
    ['10.0.0/8', /is not an IPv4 or IPv6 address/],
    ['10.0.0.1/33', /invalid prefix length \(0-32 for IPv4\)/],
    ['10.0.0.1/x', /invalid prefix length/],
    ['10.0.0.1/8/9', /is not a CIDR prefix/],
    ['fe80::1%eth0/64', /is not an IPv4 or IPv6 address/],
    ['2001:db8::1/32', /host bits set below \/32: did you mean 2001:db8::\/32\?/],
  ] as const) {
    it(`refuses "${text}" naming the field`, () => {
      assert.throws(() => parseCidr(text, 'bypass.sources'), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && e.details.field === 'bypass.sources' && message.test(e.message));
    });
  }

  it('drops duplicates and prefixes covered by wider ones, keeping the order', () => {
    const texts = ['10.1.0.0/16', '192.0.2.0/24', '10.0.0.0/8', '192.0.2.0/24', '10.2.3.4', '2001:db8::/32', '2001:db8:1::/48', '10.0.0.0/8'];
    assert.deepEqual(bypassCidrs(texts, 'f').map(formatCidr), ['192.0.2.0/24', '10.0.0.0/8', '2001:db8::/32']);
  });
});

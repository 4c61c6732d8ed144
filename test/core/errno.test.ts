import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errnoAdvice, errnoName } from '../../src/core/errno.js';

describe('errno', () => {
  it('names the errnos a proxy meets and falls back to E<n>', () => {
    assert.equal(errnoName(1), 'EPERM');
    assert.equal(errnoName(98), 'EADDRINUSE');
    assert.equal(errnoName(111), 'ECONNREFUSED');
    assert.equal(errnoName(4242), 'E4242');
  });

  const advice: [string, string, RegExp][] = [
    ['setsockopt(IP_TRANSPARENT)', 'EPERM', /IP_TRANSPARENT needs CAP_NET_ADMIN/],
    ['setsockopt(IPV6_TRANSPARENT)', 'EPERM', /IPV6_TRANSPARENT needs CAP_NET_ADMIN/],
    ['setsockopt(SO_MARK)', 'EPERM', /SO_MARK needs CAP_NET_ADMIN/],
    ['bind(0.0.0.0:80)', 'EACCES', /CAP_NET_BIND_SERVICE/],
    ['bind(0.0.0.0:8000)', 'EADDRINUSE', /already in use/],
    ['setsockopt(IP_TRANSPARENT)', 'ENOPROTOOPT', /kernel does not support IP_TRANSPARENT/],
    ['socket(AF_INET6, SOCK_STREAM)', 'EAFNOSUPPORT', /IPv6 disabled/],
    ['socket(AF_INET, SOCK_STREAM)', 'EMFILE', /ulimit -n/],
  ];
  for (const [call, errno, expected] of advice) {
    it(`advises on ${errno} from ${call}`, () => assert.match(errnoAdvice(call, errno), expected));
  }

  it('gives no advice where it has none', () => assert.equal(errnoAdvice('recvmsg', 'EBADF'), ''));
});

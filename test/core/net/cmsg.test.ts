import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTproxyError } from '../../../src/core/errors.js';
import { cmsgSpace, decodeControlMessages, encodeControlMessages, originalDestination } from '../../../src/core/net/cmsg.js';
import { IPV6_ORIGDSTADDR, IP_ORIGDSTADDR, SOL_IP, SOL_IPV6 } from '../../../src/core/net/constants.js';
import { encodeSockaddr } from '../../../src/core/net/sockaddr.js';

describe('cmsg', () => {
  it('aligns each message to 8 bytes after a 16-byte header', () => {
    assert.equal(cmsgSpace(16), 32);
    assert.equal(cmsgSpace(28), 48);
    assert.equal(cmsgSpace(4), 24);
  });

  it('lays out cmsg_len, level and type like the kernel', () => {
    const buf = encodeControlMessages([{ level: SOL_IP, type: IP_ORIGDSTADDR, data: encodeSockaddr({ family: 4, address: '203.0.113.20', port: 80 }) }]);
    assert.equal(buf.length, 32);
    assert.equal(buf.readBigUInt64LE(0), 32n, 'cmsg_len = CMSG_LEN(16)');
    assert.equal(buf.readInt32LE(8), 0);
    assert.equal(buf.readInt32LE(12), 20);
  });

  it('round-trips several messages, including unaligned data lengths', () => {
    const messages = [
      { level: SOL_IPV6, type: IPV6_ORIGDSTADDR, data: encodeSockaddr({ family: 6, address: '2001:db8:2::20', port: 53 }) },
      { level: 1, type: 29, data: Buffer.from([1, 2, 3]) },
      { level: SOL_IP, type: 8, data: Buffer.alloc(12, 9) },
    ];
    const decoded = decodeControlMessages(encodeControlMessages(messages));
    assert.deepEqual(decoded.map((m) => [m.level, m.type, m.data.toString('hex')]), messages.map((m) => [m.level, m.type, m.data.toString('hex')]));
  });

  it('finds the IPv4 original destination (level 0, type 20)', () => {
    const control = encodeControlMessages([
      { level: 1, type: 29, data: Buffer.alloc(4) },
      { level: SOL_IP, type: IP_ORIGDSTADDR, data: encodeSockaddr({ family: 4, address: '203.0.113.20', port: 80 }) },
    ]);
    assert.deepEqual(originalDestination(decodeControlMessages(control)), { family: 4, address: '203.0.113.20', port: 80 });
  });

  it('finds the IPv6 original destination (level 41, type 74)', () => {
    const control = encodeControlMessages([{ level: SOL_IPV6, type: IPV6_ORIGDSTADDR, data: encodeSockaddr({ family: 6, address: '2001:db8:2::20', port: 53 }) }]);
    assert.deepEqual(originalDestination(decodeControlMessages(control)), { family: 6, address: '2001:db8:2::20', port: 53 });
  });

  it('returns undefined without an original destination, and nothing for an empty control buffer', () => {
    assert.equal(originalDestination(decodeControlMessages(encodeControlMessages([{ level: 1, type: 29, data: Buffer.alloc(8) }]))), undefined);
    assert.deepEqual(decodeControlMessages(Buffer.alloc(64), 0), []);
  });

  it('honours msg_controllen: bytes past it are ignored', () => {
    const control = Buffer.concat([encodeControlMessages([{ level: 1, type: 2, data: Buffer.alloc(8) }]), Buffer.alloc(40, 0xff)]);
    assert.equal(decodeControlMessages(control, 24).length, 1);
  });

  it('rejects a cmsg_len that runs past the buffer', () => {
    const control = encodeControlMessages([{ level: 1, type: 2, data: Buffer.alloc(8) }]);
    control.writeBigUInt64LE(200n, 0);
    assert.throws(() => decodeControlMessages(control), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && /malformed control message/.test(e.message));
  });
});

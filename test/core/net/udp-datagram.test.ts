import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeControlMessages } from '../../../src/core/net/cmsg.js';
import { IP_PKTINFO, IPV6_PKTINFO, SOL_IP, SOL_IPV6 } from '../../../src/core/net/constants.js';
import { decodeSockaddr } from '../../../src/core/net/sockaddr.js';
import { addressBytes, udpChecksum, udpFallbackRoute, writeUdpDatagram } from '../../../src/core/net/udp-datagram.js';

/** Reference: the one's-complement sum over an explicit pseudo-header, as RFC 768 describes it. */
function referenceChecksum(pseudo: Buffer, segment: Buffer): number {
  const all = Buffer.concat([pseudo, segment, Buffer.alloc(segment.length % 2)]);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += all.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  return c === 0 ? 0xffff : c;
}

describe('UDP datagram building', () => {
  it('writes the header and a checksum that verifies (IPv4, odd payload length)', () => {
    const route = { sourceAddress: addressBytes({ address: '203.0.113.20' }), sourcePort: 53, destinationAddress: addressBytes({ address: '198.51.100.10' }), destinationPort: 40000 };
    const payload = Buffer.from('hello, odd length');
    const out = Buffer.alloc(100);
    const n = writeUdpDatagram(out, route, payload, payload.length);
    assert.equal(n, 8 + payload.length);
    assert.equal(out.readUInt16BE(0), 53);
    assert.equal(out.readUInt16BE(2), 40000);
    assert.equal(out.readUInt16BE(4), n);
    assert.equal(out.subarray(8, n).toString(), 'hello, odd length');
    const pseudo = Buffer.concat([route.sourceAddress, route.destinationAddress, Buffer.from([0, 17]), Buffer.from([n >> 8, n & 0xff])]);
    const zeroed = Buffer.from(out.subarray(0, n));
    zeroed.writeUInt16BE(0, 6);
    assert.equal(out.readUInt16BE(6), referenceChecksum(pseudo, zeroed));
    // A receiver sums everything including the checksum and must get 0xffff (i.e. ~0).
    assert.equal(referenceChecksum(pseudo, out.subarray(0, n)), 0xffff);
  });

  it('uses the IPv6 pseudo-header (32-bit length, next header 17)', () => {
    const src = addressBytes({ address: '2001:db8:2::20' });
    const dst = addressBytes({ address: '2001:db8:1::10' });
    const segment = Buffer.alloc(8 + 1000, 7);
    segment.writeUInt16BE(segment.length, 4);
    segment.writeUInt16BE(0, 6);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(segment.length);
    const pseudo = Buffer.concat([src, dst, len, Buffer.from([0, 0, 0, 17])]);
    assert.equal(udpChecksum(src, dst, segment, segment.length), referenceChecksum(pseudo, segment));
  });

  it('encodes the route once: destination with port 0 and the source in IP_PKTINFO / IPV6_PKTINFO', () => {
    const v4 = udpFallbackRoute({ family: 4, address: '203.0.113.20', port: 53 }, { family: 4, address: '198.51.100.10', port: 40000 });
    assert.deepEqual(decodeSockaddr(v4.destinationSockaddr), { family: 4, address: '198.51.100.10', port: 0 });
    assert.equal(v4.destinationPort, 40000);
    const [pktinfo] = decodeControlMessages(v4.control);
    assert.equal(pktinfo?.level, SOL_IP);
    assert.equal(pktinfo?.type, IP_PKTINFO);
    assert.deepEqual([...(pktinfo?.data.subarray(4, 8) ?? [])], [203, 0, 113, 20], 'ipi_spec_dst is the source');
    const v6 = udpFallbackRoute({ family: 6, address: '2001:db8:2::20', port: 53 }, { family: 6, address: '2001:db8:1::10', port: 40000 });
    const [pktinfo6] = decodeControlMessages(v6.control);
    assert.equal(pktinfo6?.level, SOL_IPV6);
    assert.equal(pktinfo6?.type, IPV6_PKTINFO);
    assert.equal(pktinfo6?.data.subarray(0, 16).toString('hex'), addressBytes({ address: '2001:db8:2::20' }).toString('hex'));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTproxyError } from '../../../src/core/errors.js';
import { formatIp } from '../../../src/core/net/address.js';
import { parsePacketText } from '../../../src/core/model/packet-text.js';
import { tcpFlagNames } from '../../../src/core/model/packet.js';

describe('packet text', () => {
  it('reads the issue example', () => {
    const { packet, origin } = parsePacketText('tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 syn');
    assert.equal(origin, 'wire');
    assert.equal(formatIp(packet.daddr), '203.0.113.20');
    assert.deepEqual([packet.sport, packet.dport, packet.iif, packet.ctState], [40000, 80, 'eth0', 'new']);
    assert.deepEqual(tcpFlagNames(packet.tcpFlags), ['syn']);
  });

  it('reads IPv6 in brackets, udp, mark, dscp, ttl', () => {
    const { packet } = parsePacketText('udp [2001:db8:1::10]:5353 -> [2001:db8:2::20]:53 iif eth0 mark 0x1 dscp af11 ttl 3');
    assert.deepEqual([packet.family, packet.l4proto, packet.mark, packet.dscp, packet.ttl, packet.tcpFlags], [6, 'udp', 1, 10, 3, 0]);
  });

  it('a non-SYN TCP packet defaults to ct established; local origin needs no iif', () => {
    const { packet, origin } = parsePacketText('tcp 203.0.113.1:40000 -> 203.0.113.20:80 local ack,psh');
    assert.equal(origin, 'local');
    assert.equal(packet.ctState, 'established');
    assert.deepEqual(tcpFlagNames(packet.tcpFlags), ['psh', 'ack']);
  });

  const bad: [string, RegExp][] = [
    ['icmp 1.2.3.4:1 -> 5.6.7.8:2 iif eth0', /must start with tcp or udp/],
    ['tcp 1.2.3.4 -> 5.6.7.8:2 iif eth0', /"1\.2\.3\.4" is not ADDRESS:PORT/],
    ['tcp 1.2.3.4:1 5.6.7.8:2 iif eth0', /SADDR:SPORT -> DADDR:DPORT/],
    ['tcp 1.2.3.4:1 -> [2001:db8::1]:2 iif eth0', /different families/],
    ['tcp 1.2.3.4:1 -> 5.6.7.8:99999 iif eth0', /out of range/],
    ['tcp 1.2.3.4:1 -> 5.6.7.8:2', /iif NAME/],
    ['udp 1.2.3.4:1 -> 5.6.7.8:2 iif eth0 syn', /unknown word "syn"/],
    ['tcp 1.2.3.4:1 -> 5.6.7.8:2 iif eth0 mark x', /mark needs a number/],
    ['tcp 999.2.3.4:1 -> 5.6.7.8:2 iif eth0', /not an IPv4 or IPv6 address/],
  ];
  for (const [text, why] of bad) {
    it(`rejects "${text}" saying why and the expected form`, () => {
      assert.throws(() => parsePacketText(text), (e) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && why.test(e.message) && /Expected: tcp\|udp SADDR:SPORT -> DADDR:DPORT/.test(e.message));
    });
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeControlMessages, encodeControlMessages } from '../../../src/core/net/cmsg.js';
import { IP_TOS, IPV6_TCLASS, IP_TTL, SOL_IP, SOL_IPV6 } from '../../../src/core/net/constants.js';
import { dscpOfControlMessages, dscpOfSavedSyn } from '../../../src/core/net/ip-header.js';

describe('dscpOfSavedSyn', () => {
  it('reads the DSCP of an IPv4 SYN from its TOS byte (ECN bits dropped)', () => {
    // 45 b8 ...: version 4, IHL 5, TOS 0xb8 (EF, 46); as TCP_SAVED_SYN returned it on this kernel.
    assert.equal(dscpOfSavedSyn(Buffer.from('45b8003c88f34000', 'hex')), 46);
    assert.equal(dscpOfSavedSyn(Buffer.from('458b003c', 'hex')), 34, 'AF41 with ECN bits 0b11');
  });

  it('reads the DSCP of an IPv6 SYN from the traffic class across the first two bytes', () => {
    // 6b 89 ...: version 6, traffic class 0xb8; as TCP_SAVED_SYN returned it on this kernel.
    assert.equal(dscpOfSavedSyn(Buffer.from('6b89fc4e00280621', 'hex')), 46);
    assert.equal(dscpOfSavedSyn(Buffer.from('60000000', 'hex')), 0);
  });

  it('gives undefined for no headers (read already) or something that is not IP', () => {
    assert.equal(dscpOfSavedSyn(Buffer.alloc(100), 0), undefined);
    assert.equal(dscpOfSavedSyn(Buffer.from('00b8', 'hex')), undefined);
  });
});

describe('dscpOfControlMessages', () => {
  const int = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n, 0);
    return b;
  };

  it('reads IP_TOS (one byte) and IPV6_TCLASS (an int), skipping other messages', () => {
    assert.equal(dscpOfControlMessages([{ level: SOL_IP, type: IP_TTL, data: int(64) }, { level: SOL_IP, type: IP_TOS, data: Buffer.from([0x88]) }]), 34);
    assert.equal(dscpOfControlMessages([{ level: SOL_IPV6, type: IPV6_TCLASS, data: int(0xb9) }]), 46);
  });

  it('gives undefined when neither is there', () => {
    assert.equal(dscpOfControlMessages([]), undefined);
    assert.equal(dscpOfControlMessages([{ level: SOL_IP, type: IP_TTL, data: int(64) }]), undefined);
  });

  it('reads them as recvmsg hands them over (decoded from msg_control)', () => {
    const encoded = encodeControlMessages([{ level: SOL_IP, type: IP_TTL, data: int(64) }, { level: SOL_IP, type: IP_TOS, data: Buffer.from([0xb8]) }]);
    assert.equal(dscpOfControlMessages(decodeControlMessages(encoded)), 46);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IOVEC_SIZE, MSGHDR_SIZE, readMsghdrResult, writeIovec, writeMsghdr } from '../../../src/core/net/msghdr.js';

describe('msghdr', () => {
  it('writes the 64-bit Linux layout', () => {
    const buf = writeMsghdr(Buffer.alloc(MSGHDR_SIZE, 0xaa), {
      nameAddress: 0x1111n,
      nameLength: 28,
      iovAddress: 0x2222n,
      iovCount: 1,
      controlAddress: 0x3333n,
      controlLength: 96,
    });
    assert.equal(buf.readBigUInt64LE(0), 0x1111n);
    assert.equal(buf.readUInt32LE(8), 28);
    assert.equal(buf.readBigUInt64LE(16), 0x2222n);
    assert.equal(buf.readBigUInt64LE(24), 1n);
    assert.equal(buf.readBigUInt64LE(32), 0x3333n);
    assert.equal(buf.readBigUInt64LE(40), 96n);
    assert.equal(buf.readInt32LE(48), 0, 'msg_flags cleared');
    assert.deepEqual(readMsghdrResult(buf), { nameLength: 28, controlLength: 96, flags: 0 });
  });

  it('writes iovec entries of 16 bytes', () => {
    const iov = Buffer.alloc(IOVEC_SIZE * 2);
    writeIovec(iov, 1, 0xdeadn, 1500);
    assert.equal(iov.readBigUInt64LE(16), 0xdeadn);
    assert.equal(iov.readBigUInt64LE(24), 1500n);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MMSGHDR_SIZE, readMmsghdrResult, resetMmsghdrForReceive, setMmsghdrName, writeMmsghdr } from '../../../src/core/net/mmsghdr.js';

describe('mmsghdr', () => {
  it('lays out 64-byte entries: a msghdr then msg_len', () => {
    const buf = Buffer.alloc(MMSGHDR_SIZE * 2, 0xaa);
    writeMmsghdr(buf, 1, { nameAddress: 0x1111n, nameLength: 28, iovAddress: 0x2222n, iovCount: 1, controlAddress: 0x3333n, controlLength: 96 });
    const at = MMSGHDR_SIZE;
    assert.equal(buf.readBigUInt64LE(at), 0x1111n);
    assert.equal(buf.readUInt32LE(at + 8), 28);
    assert.equal(buf.readBigUInt64LE(at + 16), 0x2222n);
    assert.equal(buf.readBigUInt64LE(at + 24), 1n);
    assert.equal(buf.readBigUInt64LE(at + 32), 0x3333n);
    assert.equal(buf.readBigUInt64LE(at + 40), 96n);
    assert.equal(buf.readInt32LE(at + 48), 0, 'msg_flags cleared');
    assert.equal(buf.readUInt32LE(at + 56), 0, 'msg_len cleared');
    assert.equal(buf.readUInt8(0), 0xaa, 'entry 0 untouched');
  });

  it('reads back what the kernel writes per entry', () => {
    const buf = Buffer.alloc(MMSGHDR_SIZE * 3);
    buf.writeUInt32LE(16, 2 * MMSGHDR_SIZE + 8);
    buf.writeBigUInt64LE(32n, 2 * MMSGHDR_SIZE + 40);
    buf.writeInt32LE(0x20, 2 * MMSGHDR_SIZE + 48);
    buf.writeUInt32LE(1472, 2 * MMSGHDR_SIZE + 56);
    assert.deepEqual(readMmsghdrResult(buf, 2), { nameLength: 16, controlLength: 32, flags: 0x20, length: 1472 });
  });

  it('resets only the fields a receive overwrites, and points an entry at a name for a send', () => {
    const buf = Buffer.alloc(MMSGHDR_SIZE);
    writeMmsghdr(buf, 0, { nameAddress: 0x10n, nameLength: 32, iovAddress: 0x20n, iovCount: 1, controlAddress: 0x30n, controlLength: 96 });
    buf.writeUInt32LE(16, 8);
    buf.writeBigUInt64LE(0x1_0000_0020n, 40);
    buf.writeInt32LE(0x20, 48);
    resetMmsghdrForReceive(buf, 0, 32, 96);
    assert.deepEqual(readMmsghdrResult(buf, 0), { nameLength: 32, controlLength: 96, flags: 0, length: 0 });
    assert.equal(buf.readBigUInt64LE(40), 96n, 'the whole 64-bit msg_controllen');
    assert.equal(buf.readBigUInt64LE(16), 0x20n, 'pointers kept');
    setMmsghdrName(buf, 0, 0xdeadn, 28);
    assert.equal(buf.readBigUInt64LE(0), 0xdeadn);
    assert.equal(buf.readUInt32LE(8), 28);
  });
});

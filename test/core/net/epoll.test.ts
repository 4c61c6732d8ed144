import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { epollEventLayout, readEpollEvent, writeEpollEvent } from '../../../src/core/net/epoll.js';

describe('epoll_event', () => {
  it('is packed (12 bytes) on x86_64 and naturally aligned (16 bytes) elsewhere', () => {
    assert.deepEqual(epollEventLayout('x64'), { size: 12, dataOffset: 4 });
    assert.deepEqual(epollEventLayout('arm64'), { size: 16, dataOffset: 8 });
  });

  for (const arch of ['x64', 'arm64']) {
    it(`round-trips events and fd at any index (${arch})`, () => {
      const layout = epollEventLayout(arch);
      const buf = Buffer.alloc(layout.size * 3, 0xff);
      writeEpollEvent(buf, layout, 2, 0x19, 1234);
      assert.deepEqual(readEpollEvent(buf, layout, 2), { events: 0x19, fd: 1234 });
      assert.equal(buf.readUInt32LE(2 * layout.size + layout.dataOffset + 4), 0, 'upper half of epoll_data zeroed');
    });
  }
});

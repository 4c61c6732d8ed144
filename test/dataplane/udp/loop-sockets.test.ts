// The record of the sockets a UDP loop holds: set when a socket is opened, cleared before it is
// closed, taken (and cleared) by the owner once the loop's thread is gone; descriptor numbers past
// the record are left alone. RecordedSocketApi keeps it with real sockets (no privileges needed).
// The uring engine's ring is recorded beside them (its descriptor, its mappings, its epoll) and
// taken once; the epoll engine records none (a real ring: stop-timeout.root.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoopSockets, RecordedSocketApi } from '../../../src/dataplane/udp/loop-sockets.js';

describe('UDP loop sockets', () => {
  it('records opened descriptors, forgets closed ones, and hands the rest over once', () => {
    const record = LoopSockets.create(96);
    for (const fd of [0, 31, 32, 63, 64, 95]) record.opened(fd);
    record.closing(32);
    record.opened(96); // past the record: not kept (left open if the loop dies)
    record.opened(-1);
    const seen = LoopSockets.attach(record.buffer);
    assert.deepEqual(seen.take(), [0, 31, 63, 64, 95]);
    assert.deepEqual(record.take(), [], 'taken once');
  });

  it('keeps the record with the sockets a SocketApi opens and closes', () => {
    const record = LoopSockets.create(1 << 16);
    const api = new RecordedSocketApi(record);
    const a = api.open({ family: 4, transport: 'udp' });
    const b = api.open({ family: 6, transport: 'udp' });
    api.close(a);
    assert.deepEqual(record.take(), [b]);
    api.close(b);
    assert.deepEqual(record.take(), []);
  });

  it('records one ring (descriptor, mappings, epoll), forgets it when the engine closes it, and hands it over once', () => {
    const record = LoopSockets.create(64);
    const resources = {
      ring: {
        fd: 7,
        mappings: [
          { address: 0x7f00_0000_1000n, length: 4096, kernelWrites: false },
          { address: 0x7fff_ffff_f000n, length: 65_536 * 33, kernelWrites: true },
        ],
      },
      epollFd: 9,
    };
    record.ringOpened(resources);
    record.opened(5);
    const seen = LoopSockets.attach(record.buffer);
    assert.deepEqual(seen.takeRing(), resources);
    assert.equal(seen.takeRing(), undefined, 'taken once');
    assert.deepEqual(seen.take(), [5], 'the sockets are a record of their own');
    record.ringOpened(resources);
    record.ringClosing();
    assert.equal(seen.takeRing(), undefined, 'closed by the engine: nothing for the owner');
  });

  it('the epoll engine leaves no ring in the record', () => {
    const record = LoopSockets.create(1 << 16);
    const io = new RecordedSocketApi(record).datagramIo('epoll', 4, 2048);
    io.close();
    assert.equal(record.takeRing(), undefined);
  });
});

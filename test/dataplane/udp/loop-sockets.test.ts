// The record of the sockets a UDP loop holds: set when a socket is opened, cleared before it is
// closed, taken (and cleared) by the owner once the loop's thread is gone; descriptor numbers past
// the record are left alone. RecordedSocketApi keeps it with real sockets (no privileges needed).
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
});

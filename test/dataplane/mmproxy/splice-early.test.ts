import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../../src/core/net/constants.js';
import { writeEarlyBytes, type EarlyLibc } from '../../../src/dataplane/mmproxy/splice-early.js';
import { PipePool } from '../../../src/dataplane/tcp/splice/pipe-pool.js';
import { newDirection, Pump } from '../../../src/dataplane/tcp/splice/pump.js';
import { FakeKernel } from '../tcp/splice/fake-kernel.js';

const UFD = 7;
const EPIPE = 32;

/** send() takes up to `room` bytes (or fails with `sendErrno`). */
class EarlyFake implements EarlyLibc {
  room = Infinity;
  sendErrno = 0;
  readonly sent: Buffer[] = [];
  private last = 0;

  send(fd: number, data: Buffer, length: number, flags: number): number {
    assert.equal(fd, UFD);
    assert.ok(flags & C.MSG_DONTWAIT, 'send must not block');
    if (this.sendErrno !== 0) return this.fail(this.sendErrno);
    if (this.room === 0) return this.fail(C.EAGAIN);
    const n = Math.min(length, this.room);
    this.room -= n;
    this.sent.push(Buffer.from(data.subarray(0, n)));
    return n;
  }

  errno(): number {
    return this.last;
  }

  private fail(errno: number): number {
    this.last = errno;
    return -1;
  }
}

describe('mmproxy: the client bytes read with the PROXY header go to the backend first', () => {
  it('one send takes them all: nothing held, every byte is counted as read from the client', () => {
    const fake = new EarlyFake();
    const up = newDirection();
    const early = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(writeEarlyBytes(fake, UFD, up, early), undefined);
    assert.deepEqual(Buffer.concat(fake.sent), early);
    assert.equal(up.held, undefined);
    assert.equal(up.r, -1, 'no pipe');
    assert.equal(up.bytes, early.length);
  });

  // A short send, and a send buffer that takes nothing (EAGAIN).
  for (const room of [6, 0]) {
    it(`a send that takes ${room} of 16 bytes: the rest is held by the client direction, in order, and no pipe is taken`, () => {
      const fake = new EarlyFake();
      const up = newDirection();
      const early = Buffer.from('0123456789abcdef');
      fake.room = room;
      assert.equal(writeEarlyBytes(fake, UFD, up, early), undefined);
      assert.equal(up.r, -1, 'no pipe');
      assert.deepEqual(Buffer.concat([...fake.sent, up.held ?? Buffer.alloc(0)]), early, 'sent + held is every byte, in order');
      assert.equal(up.bytes, early.length);
    });
  }

  it('a backend gone already: its errno, nothing held', () => {
    const fake = new EarlyFake();
    const up = newDirection();
    fake.sendErrno = EPIPE;
    assert.equal(writeEarlyBytes(fake, UFD, up, Buffer.from('x')), EPIPE);
    assert.equal(up.held, undefined);
  });

  it('the pump sends the held rest before reading the client again, then the FIN after it', () => {
    const kernel = new FakeKernel();
    const pump = new Pump(kernel, new PipePool(kernel, 65536, 8), 65536);
    // The stream's first 10 bytes came with the header (numbered as the fake kernel numbers bytes).
    const early = Buffer.from(Array.from({ length: 10 }, (_, i) => i % 251));
    const client = kernel.socket({ inbound: 50, read: 10, fin: true });
    const backend = kernel.socket({ room: 4 });
    const up = newDirection();
    const fake = { send: kernel.send.bind(kernel), errno: kernel.errno.bind(kernel) };
    assert.equal(writeEarlyBytes(fake, backend, up, early), undefined);
    assert.equal(up.held?.length, 6);
    assert.equal(pump.move(up, newDirection(), client, backend, true), undefined);
    assert.equal(kernel.state(client).inbound, 50, 'not read while bytes are held and the backend takes none');
    kernel.state(backend).room = 1 << 20;
    assert.equal(pump.move(up, newDirection(), client, backend, true), undefined);
    assert.equal(kernel.state(backend).sent, 60, 'every byte, in order (the fake checks each)');
    assert.equal(kernel.state(backend).shutWr, true, 'the FIN after the last byte');
    assert.equal(up.bytes, 60);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../../src/core/net/constants.js';
import { writeEarlyBytes, type EarlyLibc } from '../../../src/dataplane/mmproxy/splice-early.js';
import { PipePool, type PipeLibc } from '../../../src/dataplane/tcp/splice/pipe-pool.js';
import { newDirection } from '../../../src/dataplane/tcp/splice/pump.js';
import { FakeKernel } from '../tcp/splice/fake-kernel.js';

const UFD = 7;
const EPIPE = 32;

/**
 * send() takes up to `room` bytes (or fails with `sendErrno`); write() on a pipe keeps what it
 * got; pipes are the fake kernel's (one errno for all, as libc has).
 */
class EarlyFake implements EarlyLibc, PipeLibc {
  room = Infinity;
  sendErrno = 0;
  writeFails = false;
  readonly sent: Buffer[] = [];
  readonly piped = new Map<number, Buffer[]>();
  private last = 0;

  constructor(readonly kernel: FakeKernel) {}

  pipe2(fds: Buffer, flags: number): number {
    const r = this.kernel.pipe2(fds, flags);
    if (r < 0) this.last = this.kernel.errno();
    return r;
  }

  fcntl(fd: number, cmd: number, arg: number): number {
    return this.kernel.fcntl(fd, cmd, arg);
  }

  close(fd: number): number {
    return this.kernel.close(fd);
  }

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

  write(fd: number, data: Buffer, length: number): number {
    if (this.writeFails) return this.fail(C.EAGAIN);
    (this.piped.get(fd) ?? this.piped.set(fd, []).get(fd)!).push(Buffer.from(data.subarray(0, length)));
    return length;
  }

  errno(): number {
    return this.last;
  }

  private fail(errno: number): number {
    this.last = errno;
    return -1;
  }
}

function setup(): { fake: EarlyFake; kernel: FakeKernel; pipes: PipePool } {
  const kernel = new FakeKernel();
  const fake = new EarlyFake(kernel);
  return { fake, kernel, pipes: PipePool.perFlow(fake, 256 * 1024, 4) };
}

describe('mmproxy: the client bytes read with the PROXY header go to the backend first', () => {
  it('one send takes them all: no pipe is taken, every byte is counted as read from the client', () => {
    const { fake, kernel, pipes } = setup();
    const up = newDirection();
    const early = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(writeEarlyBytes(fake, pipes, UFD, up, newDirection(), early), undefined);
    assert.deepEqual(Buffer.concat(fake.sent), early);
    assert.deepEqual(kernel.calls, [], 'no pipe2');
    assert.equal(up.r, -1);
    assert.equal(up.buffered, 0);
    assert.equal(up.bytes, early.length);
  });

  // A short send, and a send buffer that takes nothing (EAGAIN).
  for (const room of [6, 0]) {
    it(`a send that takes ${room} of 16 bytes: the rest goes into the client direction's pipe, in order, counted as buffered for the pump`, () => {
      const { fake, pipes } = setup();
      const up = newDirection();
      const early = Buffer.from('0123456789abcdef');
      fake.room = room;
      assert.equal(writeEarlyBytes(fake, pipes, UFD, up, newDirection(), early), undefined);
      assert.ok(up.r >= 0 && up.w >= 0, 'the direction holds a pipe');
      assert.deepEqual(Buffer.concat([...fake.sent, ...(fake.piped.get(up.w) ?? [])]), early, 'sent + piped is every byte, in order');
      assert.equal(up.buffered, early.length - room);
      assert.equal(up.bytes, early.length);
    });
  }

  it('a backend gone already: its errno, nothing piped', () => {
    const { fake, pipes } = setup();
    const up = newDirection();
    fake.sendErrno = EPIPE;
    assert.deepEqual(writeEarlyBytes(fake, pipes, UFD, up, newDirection(), Buffer.from('x')), { at: 'backend', errno: EPIPE });
    assert.equal(up.r, -1);
    assert.equal(fake.piped.size, 0);
  });

  it('no pipe to be had (out of descriptors): pipe2\'s errno, for the engine to count', () => {
    const { fake, kernel, pipes } = setup();
    kernel.outOfDescriptors = true;
    fake.room = 1;
    const failure = writeEarlyBytes(fake, pipes, UFD, newDirection(), newDirection(), Buffer.from('abc'));
    assert.equal(failure?.at, 'pipe');
    assert.equal(failure?.errno, C.EMFILE);
  });

  it('a pipe that does not take the rest is an error, never a silent loss', () => {
    const { fake, pipes } = setup();
    fake.room = 1;
    fake.writeFails = true;
    assert.equal(writeEarlyBytes(fake, pipes, UFD, newDirection(), newDirection(), Buffer.from('abc'))?.at, 'pipe');
  });
});

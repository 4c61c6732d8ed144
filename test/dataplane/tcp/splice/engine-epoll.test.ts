import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../../../src/core/net/constants.js';
import { EngineEpoll, waitBefore } from '../../../../src/dataplane/tcp/splice/engine-epoll.js';
import type { Epoll } from '../../../../src/sys/epoll.js';
import type { SocketApi } from '../../../../src/sys/socket.js';

const WAKE = 9;

/** An epoll whose next wait returns `ready` (fd, events) pairs; the waits asked are logged. */
function fakes(ready: [number, number][]): { loop: EngineEpoll; waits: number[]; reads: number[]; added: string[]; closed: string[] } {
  const waits: number[] = [];
  const reads: number[] = [];
  const added: string[] = [];
  const closed: string[] = [];
  const epoll = {
    add: (fd: number, events: number) => added.push(`${fd} ${events}`),
    wait: (ms: number) => (waits.push(ms), ready.length),
    readyFd: (i: number) => ready[i]![0],
    readyEvents: (i: number) => ready[i]![1],
    close: () => closed.push('epoll'),
  } as unknown as Epoll;
  const api = { epoll: () => epoll, fail: (call: string) => { throw new Error(`${call} failed`); } } as unknown as SocketApi;
  const libc = { eventfd: () => WAKE, read: (fd: number) => (reads.push(fd), 8) };
  return { loop: new EngineEpoll(libc, api, 4), waits, reads, added, closed };
}

describe('splice engine epoll set (both splice engines)', () => {
  it('watches its wake eventfd; a turn hands every other ready descriptor to the engine, the eventfd is read and says it was woken', () => {
    const { loop, waits, reads, added } = fakes([[20, C.EPOLLIN], [WAKE, C.EPOLLIN], [21, C.EPOLLOUT | C.EPOLLHUP]]);
    assert.equal(loop.wakeFd, WAKE);
    assert.deepEqual(added, [`${WAKE} ${C.EPOLLIN}`]);
    const seen: string[] = [];
    assert.equal(loop.dispatch(200, (fd, events) => seen.push(`${fd} ${events}`)), true);
    assert.deepEqual(waits, [200]);
    assert.deepEqual(seen, [`20 ${C.EPOLLIN}`, `21 ${C.EPOLLOUT | C.EPOLLHUP}`]);
    assert.deepEqual(reads, [WAKE]);
  });

  it('a turn without the eventfd among the ready ones says it was not woken', () => {
    const { loop, reads } = fakes([[20, C.EPOLLIN]]);
    assert.equal(loop.dispatch(0, () => undefined), false);
    assert.deepEqual(reads, []);
  });

  it('no eventfd: the error says so and the epoll descriptor is closed', () => {
    const epoll = { close: () => closed.push('epoll') } as unknown as Epoll;
    const closed: string[] = [];
    const api = { epoll: () => epoll, fail: (call: string) => { throw new Error(`${call} failed with EMFILE`); } } as unknown as SocketApi;
    assert.throws(() => new EngineEpoll({ eventfd: () => -1, read: () => 0 }, api, 4), /eventfd failed/);
    assert.deepEqual(closed, ['epoll']);
  });

  it('a turn waits no later than the first deadline of its own (never negative), else as long as the engine may idle', () => {
    const now = (): number => 1000;
    const idle = (): number => 1000;
    assert.equal(waitBefore(200, { deadline: 1050 }, now, idle), 50);
    assert.equal(waitBefore(200, { deadline: 1500 }, now, idle), 200);
    assert.equal(waitBefore(200, { deadline: 900 }, now, idle), 0);
    assert.equal(waitBefore(200, undefined, now, idle), 1000);
  });
});

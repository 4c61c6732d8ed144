import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../../../src/core/net/constants.js';
import { NOT_WATCHED, updateInterest } from '../../../../src/dataplane/tcp/splice/interest.js';
import { GracefulStop } from '../../../../src/dataplane/tcp/splice/stop.js';
import { duePrefix, EngineTimers, idleScanInterval, ReportedCounters, turnWait } from '../../../../src/dataplane/tcp/splice/timers.js';

describe('splice engine timers, stop and epoll interest', () => {
  it('takes the due prefix of deadlines in order', () => {
    const items = [{ at: 10 }, { at: 20 }, { at: 30 }];
    assert.deepEqual(duePrefix(items, 20, (i) => i.at), [{ at: 10 }, { at: 20 }]);
    assert.deepEqual(duePrefix(items, 5, (i) => i.at), []);
  });

  it('an idle engine waits a second (not 200 ms): only while nothing is timed and the owner has the counters as they are', () => {
    assert.equal(turnWait(200, { timed: false, countersReported: true }), C.IDLE_WAIT_MAX_MS, 'idle: one wake-up a second, unless an event or the owner\'s comes');
    assert.ok(C.IDLE_WAIT_MAX_MS >= 1000);
    assert.equal(turnWait(200, { timed: true, countersReported: true }), 200, 'flows, connects, sniffs, an accept retry or a stop are timed');
    assert.equal(turnWait(200, { timed: false, countersReported: false }), 200, 'the last flow ended: its counters still go out at the next report');
  });

  it('runs each timer at its own period of one injected clock', () => {
    const timers = new EngineTimers(30_000, 1000);
    assert.equal(idleScanInterval(30_000), C.IDLE_SCAN_MAX_MS);
    assert.equal(idleScanInterval(200), C.IDLE_SCAN_MIN_MS);
    assert.equal(idleScanInterval(5000), 500);
    assert.ok(timers.scanDue(1_000_000));
    assert.ok(!timers.scanDue(1_000_000 + C.TIMER_SCAN_MS - 1));
    assert.ok(timers.scanDue(1_000_000 + C.TIMER_SCAN_MS));
    assert.ok(timers.idleDue(1_000_000));
    assert.ok(!timers.idleDue(1_000_999));
    assert.ok(timers.idleDue(1_001_000));
    assert.ok(timers.countersDue(1_000_000));
    assert.ok(!timers.countersDue(1_000_500));
    assert.ok(!new EngineTimers(0, 1000).idleDue(1_000_000), 'no idle timeout: never');
  });

  it('stops by the earliest deadline asked, and reports flows completed and forced', () => {
    const stop = new GracefulStop();
    assert.ok(!stop.stopping);
    assert.ok(!stop.due(0, 0));
    assert.ok(stop.begin(1000, 5000, 3));
    assert.ok(!stop.begin(2000, 10_000, 1), 'asked again: not a new stop');
    assert.ok(!stop.due(5999, 2));
    assert.ok(stop.due(6000, 2));
    assert.ok(!stop.begin(2000, 1000, 2));
    assert.ok(stop.due(3000, 2), 'the shorter grace wins');
    assert.ok(stop.due(1500, 0), 'no flow left: done before the deadline');
    assert.deepEqual(stop.report(2), { completed: 1, forced: 2 });
  });

  it('changes epoll interest with one call at most, and removes sockets with nothing to wait for', () => {
    const calls: string[] = [];
    const epoll = { add: (fd: number, e: number) => calls.push(`add ${fd} ${e}`), modify: (fd: number, e: number) => calls.push(`mod ${fd} ${e}`), remove: (fd: number) => calls.push(`del ${fd}`) };
    let i = updateInterest(epoll, 7, NOT_WATCHED, 0);
    assert.equal(i, NOT_WATCHED);
    i = updateInterest(epoll, 7, i, C.EPOLLIN);
    i = updateInterest(epoll, 7, i, C.EPOLLIN);
    i = updateInterest(epoll, 7, i, C.EPOLLIN | C.EPOLLOUT);
    i = updateInterest(epoll, 7, i, 0);
    assert.equal(i, NOT_WATCHED);
    assert.deepEqual(calls, [`add 7 ${C.EPOLLIN}`, `mod 7 ${C.EPOLLIN | C.EPOLLOUT}`, 'del 7']);
  });

  it('ReportedCounters: the owner has the counters only when they were posted while nothing was timed and have not changed since', () => {
    const reported = new ReportedCounters();
    assert.equal(reported.current({ accepted: 1 }), false, 'nothing posted yet');
    reported.posted({ accepted: 1 }, true);
    assert.equal(reported.current({ accepted: 1 }), false, 'posted while flows moved them: they may have changed');
    reported.posted({ accepted: 1 }, false);
    assert.equal(reported.current({ accepted: 1 }), true);
    assert.equal(reported.current({ accepted: 2 }), false, 'changed since: post again');
  });

  it('ReportedCounters.postWhenDue: a snapshot posted and remembered only when due', () => {
    const reported = new ReportedCounters();
    const posts: unknown[] = [];
    let snapshots = 0;
    const snapshot = (): { accepted: number } => ({ accepted: ++snapshots });
    reported.postWhenDue(false, snapshot, (c) => posts.push(c), false);
    assert.deepEqual([posts, snapshots], [[], 0], 'not due: no snapshot taken');
    reported.postWhenDue(true, snapshot, (c) => posts.push(c), false);
    assert.deepEqual(posts, [{ accepted: 1 }]);
    assert.equal(reported.current({ accepted: 1 }), true);
  });
});

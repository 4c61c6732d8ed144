import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../../../src/core/net/constants.js';
import type { SocketApi } from '../../../../src/sys/socket.js';
import { CONNECTING, connectOutcome, FlowTable, type Expiry, type TableFlow } from '../../../../src/dataplane/tcp/splice/flow-table.js';
import { NOT_WATCHED } from '../../../../src/dataplane/tcp/splice/interest.js';
import { newDirection } from '../../../../src/dataplane/tcp/splice/pump.js';

interface TestFlow extends TableFlow {
  readonly name: string;
}

const ECONNREFUSED = 111;

const flow = (name: string, cfd: number, connectDeadline: number, lastActive = 0): TestFlow => ({ name, cfd, ufd: cfd + 1, up: newDirection(), down: newDirection(), connectDeadline, lastActive, connected: false, closed: false, cInterest: NOT_WATCHED, uInterest: NOT_WATCHED });

function table(): { t: FlowTable<TestFlow, { kind: 'listener' }>; epoll: string[]; closed: string[] } {
  const epoll: string[] = [];
  const closed: string[] = [];
  const interest = { add: (fd: number, e: number) => epoll.push(`add ${fd} ${e}`), modify: (fd: number, e: number) => epoll.push(`mod ${fd} ${e}`), remove: (fd: number) => epoll.push(`del ${fd}`) };
  const t = new FlowTable<TestFlow, { kind: 'listener' }>(interest, { close: (f, reason) => closed.push(`${f.name} ${reason}`) });
  return { t, epoll, closed };
}

describe('splice flow table (both splice engines)', () => {
  it('a started flow owns its two sockets and its upstream is watched for the connect (one epoll_ctl)', () => {
    const { t, epoll } = table();
    t.owners.set(3, { kind: 'listener' });
    const f = flow('a', 10, 100);
    t.add(f);
    assert.deepEqual(epoll, [`add 11 ${C.EPOLLOUT}`]);
    assert.equal(f.uInterest, C.EPOLLOUT);
    assert.deepEqual(t.owners.get(10), { kind: 'client', flow: f });
    assert.deepEqual(t.owners.get(11), { kind: 'upstream', flow: f });
    assert.ok(t.flows.has(f) && t.connecting.has(f));
    t.connected(f);
    assert.ok(f.connected && !t.connecting.has(f) && t.flows.has(f));
  });

  it('closes a flow once: sockets and pipes through the pump, forgotten everywhere; the second close is a no-op', () => {
    const { t, closed } = table();
    t.owners.set(3, { kind: 'listener' });
    const f = flow('a', 10, 100);
    t.add(f);
    assert.equal(t.close(f, 'done'), true);
    assert.equal(t.close(f, 'client-ECONNRESET'), false);
    assert.deepEqual(closed, ['a done']);
    assert.ok(f.closed);
    assert.deepEqual([...t.owners.keys()], [3], 'the listener stays');
    assert.equal(t.flows.size + t.connecting.size, 0);
  });

  it('expires connects past their deadline in start order, and idle connected flows only when the idle pass is due', () => {
    const { t } = table();
    const late = flow('late', 10, 50);
    const later = flow('later', 20, 80);
    const waiting = flow('waiting', 30, 500);
    const idle = flow('idle', 40, 0, 10);
    const busy = flow('busy', 50, 0, 95);
    for (const f of [late, later, waiting, idle, busy]) t.add(f);
    t.connected(idle);
    t.connected(busy);
    const ended: string[] = [];
    const end = (f: TestFlow, why: Expiry): void => {
      ended.push(`${f.name} ${why}`);
      t.close(f, why);
    };
    t.expire(100, undefined, end);
    assert.deepEqual(ended, ['late connect-timeout', 'later connect-timeout']);
    t.expire(100, 60, end);
    assert.deepEqual(ended.slice(2), ['idle idle-timeout'], 'busy moved 5 ms ago; waiting is not connected');
    assert.deepEqual([...t.flows].map((f) => f.name), ['waiting', 'busy']);
  });

  it('reads a connect\'s outcome from its events: SO_ERROR only when they report an error', () => {
    const asked: number[] = [];
    const api = { getInt: (fd: number, level: number, name: number) => (asked.push(fd), assert.deepEqual([level, name], [C.SOL_SOCKET, C.SO_ERROR]), ECONNREFUSED) } as unknown as SocketApi;
    assert.equal(connectOutcome(api, 5, C.EPOLLOUT), 0);
    assert.equal(connectOutcome(api, 5, C.EPOLLIN), CONNECTING);
    assert.deepEqual(asked, []);
    assert.equal(connectOutcome(api, 5, C.EPOLLOUT | C.EPOLLERR | C.EPOLLHUP), ECONNREFUSED);
    assert.deepEqual(asked, [5]);
  });
});

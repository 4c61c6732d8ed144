import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { summarizeSockets, threadStates } from '../../src/bench/stall-state.js';

describe('the state of a backend half after a failed measurement', () => {
  it('counts connections by state, the accept queue of the listener and the bytes nobody read', () => {
    const ss = [
      'LISTEN     12     511        127.0.0.1:9101        0.0.0.0:*',
      'ESTAB      0      0          127.0.0.1:9101      127.0.0.1:40000',
      'ESTAB      517    0          127.0.0.1:9101      127.0.0.1:40002',
      'FIN-WAIT-1 0      1024       127.0.0.1:9101      127.0.0.1:40004',
      '',
    ].join('\n');
    assert.equal(summarizeSockets(ss), 'accept queue 12/511, 2 ESTAB, 1 FIN-WAIT-1, 517 bytes unread on 1');
    assert.equal(summarizeSockets(''), 'no connection');
    assert.equal(summarizeSockets('SYN-SENT 0 1 198.51.100.10:62001 203.0.113.20:80\n'), '1 SYN-SENT');
  });

  it('says where the threads of a process wait', () => {
    const proc = mkdtempSync(join(tmpdir(), 'tproxy-stall-state-'));
    try {
      const tasks: readonly (readonly [string, string, string])[] = [
        ['10', '10 (node) S 1 2 3', 'do_epoll_wait'],
        ['11', '11 (node worker) S 1 2 3', 'io_cqring_wait'],
        ['12', '12 (node) R 1 2 3', '0'],
        ['13', '13 (node) S 1 2 3', 'do_epoll_wait'],
      ];
      for (const [task, stat, wchan] of tasks) {
        mkdirSync(join(proc, '10', 'task', task), { recursive: true });
        writeFileSync(join(proc, '10', 'task', task, 'stat'), stat);
        writeFileSync(join(proc, '10', 'task', task, 'wchan'), wchan);
      }
      assert.equal(threadStates(10, proc), '1 R -, 2 S do_epoll_wait, 1 S io_cqring_wait');
      assert.equal(threadStates(99, proc), '');
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });
});

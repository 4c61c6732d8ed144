// Which UDP engine runs: uring only where io_uring works here, else epoll with the reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveUdpEngine } from '../../../src/dataplane/udp/engines.js';

describe('UDP engine choice', () => {
  it('runs epoll when asked for it, without a word and without probing io_uring', () => {
    assert.deepEqual(
      resolveUdpEngine('epoll', () => {
        throw new Error('probed');
      }),
      { engine: 'epoll', why: undefined },
    );
  });

  it('runs uring where io_uring works, saying so', () => {
    assert.deepEqual(resolveUdpEngine('uring', () => ({ available: true, why: 'io_uring is available (kernel 6.18.0)' })), { engine: 'uring', why: 'io_uring is available (kernel 6.18.0)' });
  });

  it('falls back to epoll where io_uring is refused, with the host\'s reason in the line', () => {
    const why = 'io_uring_setup failed with EPERM: a seccomp profile refuses io_uring (Docker\'s default does), or the kernel lacks it';
    assert.deepEqual(resolveUdpEngine('uring', () => ({ available: false, why })), { engine: 'epoll', why: `${why}: the epoll engine runs instead` });
  });
});

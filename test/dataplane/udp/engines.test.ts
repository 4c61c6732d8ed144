// Which UDP engine runs: uring only where io_uring works here, else epoll with the reason; and the
// one udp.engine line a started loop gets, whatever made it fall back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveUdpEngine, udpEngineLine } from '../../../src/dataplane/udp/engines.js';

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

  describe('the udp.engine line of a started loop: one, naming the engine that runs', () => {
    const available = { engine: 'uring', why: 'io_uring is available (kernel 6.18.0)' } as const;
    it('none when epoll was asked for', () => {
      assert.equal(udpEngineLine('epoll', { engine: 'epoll', why: undefined }, { engine: 'epoll' }), undefined);
    });
    it('uring runs: the host probe\'s reason', () => {
      assert.deepEqual(udpEngineLine('uring', available, { engine: 'uring' }), { type: 'udp.engine', requested: 'uring', engine: 'uring', why: available.why });
    });
    it('the host refuses io_uring: epoll, with the host\'s reason', () => {
      const refused = resolveUdpEngine('uring', () => ({ available: false, why: 'kernel.io_uring_disabled is 2' }));
      assert.deepEqual(udpEngineLine('uring', refused, { engine: 'epoll' }), { type: 'udp.engine', requested: 'uring', engine: 'epoll', why: 'kernel.io_uring_disabled is 2: the epoll engine runs instead' });
    });
    it('the host probe passed but the loop\'s ring was refused: epoll, with the ring\'s reason only (not "io_uring is available")', () => {
      const fallback = 'the io_uring ring could not be set up (io_uring_register(IORING_REGISTER_PBUF_RING) failed with ENOMEM): the epoll engine runs instead';
      assert.deepEqual(udpEngineLine('uring', available, { engine: 'epoll', fallback }), { type: 'udp.engine', requested: 'uring', engine: 'epoll', why: fallback });
    });
  });
});

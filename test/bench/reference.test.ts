// The reference relay's mode flag: the two designs it builds, and nothing else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TproxyError } from '../../src/core/errors.js';
import { parseReferenceMode, REFERENCE_MODES } from '../../src/bench/reference.js';

describe('--reference-relay', () => {
  it('takes threads or epoll', () => {
    assert.deepEqual(REFERENCE_MODES.map(parseReferenceMode), ['threads', 'epoll']);
  });

  it('refuses any other mode with the valid ones named', () => {
    assert.throws(() => parseReferenceMode('uring'), (e: unknown) => e instanceof TproxyError && e.code === 'ERR_INVALID_ARGUMENT' && /threads or epoll/.test(e.message));
    assert.throws(() => parseReferenceMode(''), TproxyError);
  });
});

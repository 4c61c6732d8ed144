import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QUOTE_MAX_CHARS, clipped, quoted } from '../../src/core/quote.js';

describe('values quoted in messages', () => {
  it('quotes short values whole, like JSON', () => {
    assert.equal(quoted('tcp:80'), '"tcp:80"');
    assert.equal(quoted('a "b"\n'), '"a \\"b\\"\\n"');
  });

  it('shows a long value by its start and its length', () => {
    const text = quoted('x'.repeat(20_000_000));
    assert.equal(text, `"${'x'.repeat(QUOTE_MAX_CHARS)}…" (20000000 characters)`);
  });

  it('clips long text without quoting it', () => {
    assert.equal(clipped('Unknown option'), 'Unknown option');
    assert.equal(clipped('y'.repeat(1000), 10), 'yyyyyyyyyy… (1000 characters)');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeIntercepts, parseFamily, parseIntercept, parseMark, parsePortOption } from '../../../src/core/config/intercept.js';
import { isTproxyError } from '../../../src/core/errors.js';

describe('--intercept and friends', () => {
  const good: [string, unknown][] = [
    ['tcp:80', { transport: 'tcp', ports: [{ from: 80, to: 80 }] }],
    ['udp:53', { transport: 'udp', ports: [{ from: 53, to: 53 }] }],
    ['TCP:80,443', { transport: 'tcp', ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }] }],
    ['tcp:8000-8100,9000', { transport: 'tcp', ports: [{ from: 8000, to: 8100 }, { from: 9000, to: 9000 }] }],
  ];
  for (const [text, expected] of good) it(`parses ${text}`, () => assert.deepEqual(parseIntercept(text), expected));

  const bad: [string, RegExp][] = [
    ['sctp:80', /expected PROTO:PORTS with PROTO tcp or udp/],
    ['tcp', /expected PROTO:PORTS/],
    ['tcp:http', /"http" is not a port number/],
    ['tcp:0', /port 0 is outside 1-65535/],
    ['tcp:70000', /port 70000 is outside/],
    ['tcp:90-80', /range 90-80 is reversed/],
    ['tcp:80,', /"" is not a port number/],
  ];
  for (const [text, message] of bad) {
    it(`rejects ${text}`, () => assert.throws(() => parseIntercept(text), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && message.test(e.message)));
  }

  it('merges repeated flags per protocol', () => {
    assert.deepEqual(mergeIntercepts(['tcp:80', 'udp:53', 'tcp:443'].map(parseIntercept)), [
      { transport: 'tcp', ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }] },
      { transport: 'udp', ports: [{ from: 53, to: 53 }] },
    ]);
  });

  it('parses families, ports and marks, and says what is allowed', () => {
    assert.deepEqual(parseFamily('both'), [4, 6]);
    assert.deepEqual(parseFamily('6'), [6]);
    assert.throws(() => parseFamily('5'), /use 4, 6 or both/);
    assert.equal(parsePortOption('listen', '8000'), 8000);
    assert.throws(() => parsePortOption('listen', '0'), /--listen 0: use a port number from 1 to 65535/);
    assert.equal(parseMark('fwmark', '0x10'), 16);
    assert.equal(parseMark('fwmark', '7'), 7);
    assert.throws(() => parseMark('fwmark', '0x1ffffffff'), /32-bit number/);
  });
});

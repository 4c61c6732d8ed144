// The logger's throttle of lines an outsider can repeat per connection (mmproxy.reject).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, type LogEvent } from '../../src/daemon/log.js';
import { LogThrottle, THROTTLE_WINDOW_MS, throttleKey } from '../../src/daemon/log-throttle.js';

const balancer = { family: 4 as const, address: '192.0.2.10', port: 40000 };
const reject = (reason: string, listener = 'lb'): LogEvent => ({ type: 'mmproxy.reject', listener, balancer, reason });

describe('LogThrottle', () => {
  it('admits the first of a key in a window, counts the rest, and says their number with the next one admitted', () => {
    const t = new LogThrottle(1000);
    assert.equal(t.admit('a', 0), 0);
    assert.equal(t.admit('a', 1), undefined);
    assert.equal(t.admit('a', 999), undefined);
    assert.equal(t.admit('b', 500), 0, 'another key has its own window');
    assert.equal(t.admit('a', 1000), 2);
    assert.equal(t.admit('a', 1500), undefined);
    assert.equal(t.admit('a', 5000), 1);
    assert.equal(t.admit('a', 9000), 0);
  });

  it('keys mmproxy refusals by listener and reason, and nothing else', () => {
    assert.equal(throttleKey(reject('bad-signature')), throttleKey(reject('bad-signature')));
    assert.notEqual(throttleKey(reject('bad-signature')), throttleKey(reject('truncated')));
    assert.notEqual(throttleKey(reject('bad-signature', 'a')), throttleKey(reject('bad-signature', 'b')));
    assert.equal(throttleKey({ type: 'error', code: 'E', message: 'm' }), undefined);
  });
});

describe('createLogger throttling', () => {
  const run = (format: 'json' | 'text', times: readonly number[], events: readonly LogEvent[]): string[] => {
    const lines: string[] = [];
    let i = 0;
    const log = createLogger({ format, level: 'info', write: (l) => lines.push(l), now: () => new Date(Date.UTC(2026, 0, 1) + (times[i] ?? 0)) });
    for (; i < events.length; i++) log(events[i] as LogEvent);
    return lines;
  };

  it('writes one refusal per listener and reason in a window, then one saying how many it left out', () => {
    const events = [reject('descriptor-limit'), reject('descriptor-limit'), reject('descriptor-limit'), reject('truncated'), reject('descriptor-limit')];
    const lines = run('json', [0, 10, 20, 30, THROTTLE_WINDOW_MS + 1], events).map((l) => JSON.parse(l) as { reason: string; leftOut?: number; msg: string });
    assert.deepEqual(lines.map((l) => [l.reason, l.leftOut]), [['descriptor-limit', undefined], ['truncated', undefined], ['descriptor-limit', 2]]);
    assert.match(lines[2]?.msg ?? '', /refused 192\.0\.2\.10:40000: descriptor-limit \(and 2 more like it in the 10 s before: counted, not logged\)$/);
  });

  it('says the same in text, and never holds back other events', () => {
    const events: LogEvent[] = [reject('v1-no-crlf'), reject('v1-no-crlf'), { type: 'error', code: 'E', message: 'e' }, { type: 'error', code: 'E', message: 'e' }, reject('v1-no-crlf')];
    const lines = run('text', [0, 1, 2, 3, THROTTLE_WINDOW_MS], events);
    assert.equal(lines.length, 4);
    assert.match(lines[3] ?? '', /lb: mmproxy lb refused 192\.0\.2\.10:40000: v1-no-crlf \(and 1 more like it in the 10 s before: counted, not logged\)\n$/);
  });

  it('counts nothing for events below the level (a source not allowed is debug)', () => {
    const lines = run('json', [0, 1, THROTTLE_WINDOW_MS + 1], [reject('source-not-allowed'), reject('source-not-allowed'), reject('source-not-allowed')]);
    assert.deepEqual(lines, []);
  });
});

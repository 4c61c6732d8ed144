import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, formatEvent, levelOf, type LogEvent } from '../../src/cli/log.js';

const at = new Date('2026-11-30T04:00:00.000Z');
const close: LogEvent = {
  type: 'tcp.close',
  id: 7,
  client: { family: 4, address: '198.51.100.10', port: 40_000 },
  originalDestination: { family: 4, address: '203.0.113.20', port: 80 },
  bytesFromClient: 100,
  bytesFromServer: 2000,
  durationMs: 15,
  reason: 'done',
};

describe('log lines', () => {
  it('JSON: time, level, type, msg, then the fields of the event', () => {
    const line = formatEvent(close, 'json', at);
    assert.ok(line.endsWith('}\n'));
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed).slice(0, 4), ['time', 'level', 'type', 'msg']);
    assert.equal(parsed.time, '2026-11-30T04:00:00.000Z');
    assert.equal(parsed.level, 'debug');
    assert.equal(parsed.type, 'tcp.close');
    assert.equal(parsed.msg, 'tcp #7 198.51.100.10:40000 -> 203.0.113.20:80 closed (done): 100 bytes up, 2000 bytes down, 15 ms');
    assert.equal(parsed.bytesFromServer, 2000);
    assert.deepEqual(parsed.client, { family: 4, address: '198.51.100.10', port: 40_000 });
  });

  it('an event field never overwrites time, level or msg', () => {
    const parsed = JSON.parse(formatEvent({ type: 'rules.warning', message: 'x', level: 'nope', time: 'nope', msg: 'nope' }, 'json', at)) as Record<string, unknown>;
    assert.equal(parsed.level, 'warn');
    assert.equal(parsed.time, '2026-11-30T04:00:00.000Z');
    assert.equal(parsed.msg, 'rules: x');
  });

  it('text: time, level, the sentence', () => {
    assert.equal(formatEvent({ type: 'listening', transport: 'tcp', family: 6, local: { family: 6, address: '::', port: 8000 } }, 'text', at), '2026-11-30T04:00:00.000Z info  listening tcp [::]:8000 (IP_TRANSPARENT)\n');
    assert.equal(formatEvent({ type: 'error', code: 'EMFILE', message: 'tcp accept: EMFILE' }, 'text', at), '2026-11-30T04:00:00.000Z error error EMFILE: tcp accept: EMFILE\n');
    assert.equal(formatEvent({ type: 'metrics.listening', address: '127.0.0.1:9464', url: 'http://127.0.0.1:9464/metrics' }, 'text', at), '2026-11-30T04:00:00.000Z info  metrics at http://127.0.0.1:9464/metrics\n');
  });

  it('levels: flows at debug, a worker that dies for good at error, one restarted at warn', () => {
    assert.equal(levelOf(close), 'debug');
    assert.equal(levelOf({ type: 'udp.session.open', id: 1, client: close.client, originalDestination: close.originalDestination, upstreamLocal: close.client, mapping: 'endpoint-dependent' }), 'debug');
    assert.equal(levelOf({ type: 'worker.exit', pid: 1, exitCode: 1, signal: null, restarting: true }), 'warn');
    assert.equal(levelOf({ type: 'worker.exit', pid: 1, exitCode: 1, signal: null, restarting: false }), 'error');
    assert.equal(levelOf({ type: 'ready', pid: 1 }), 'info');
  });

  it('the logger drops what is below its level', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', level: 'warn', write: (l) => lines.push(l), now: () => at });
    log(close);
    log({ type: 'ready', pid: 1 });
    log({ type: 'rules.warning', message: 'w' });
    log({ type: 'error', code: 'E', message: 'e' });
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { type: string }).type), ['rules.warning', 'error']);
  });
});

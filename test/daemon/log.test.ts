import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, formatEvent, levelOf, messageOf, type LogEvent } from '../../src/daemon/log.js';

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
    // Events are typed and have no such fields; one that came with them anyway (a cast, a JSON line) must not win.
    const hostile = { type: 'rules.warning', message: 'x', level: 'nope', time: 'nope', msg: 'nope' } as unknown as LogEvent;
    const parsed = JSON.parse(formatEvent(hostile, 'json', at)) as Record<string, unknown>;
    assert.equal(parsed.level, 'warn');
    assert.equal(parsed.time, '2026-11-30T04:00:00.000Z');
    assert.equal(parsed.msg, 'rules: x');
  });

  it('text: time, level, the sentence', () => {
    assert.equal(formatEvent({ type: 'listening', transport: 'tcp', family: 6, local: { family: 6, address: '::', port: 8000 } }, 'text', at), '2026-11-30T04:00:00.000Z info  listening tcp [::]:8000 (IP_TRANSPARENT)\n');
    assert.equal(formatEvent({ type: 'error', code: 'EMFILE', message: 'tcp accept: EMFILE' }, 'text', at), '2026-11-30T04:00:00.000Z error error EMFILE: tcp accept: EMFILE\n');
    assert.equal(formatEvent({ type: 'metrics.listening', address: '127.0.0.1:9464', url: 'http://127.0.0.1:9464/metrics' }, 'text', at), '2026-11-30T04:00:00.000Z info  metrics at http://127.0.0.1:9464/metrics\n');
  });

  it('with several listeners: a proxy event names its listener (text prefix, JSON field)', () => {
    const listening: LogEvent = { type: 'listening', transport: 'udp', family: 4, local: { family: 4, address: '0.0.0.0', port: 8053 }, listener: 'dns' };
    assert.equal(formatEvent(listening, 'text', at), '2026-11-30T04:00:00.000Z info  dns: listening udp 0.0.0.0:8053 (IP_TRANSPARENT)\n');
    assert.equal((JSON.parse(formatEvent(listening, 'json', at)) as { listener: string }).listener, 'dns');
    assert.equal(formatEvent({ type: 'listener.draining', listener: 'web', drainMs: 600_000 }, 'text', at), '2026-11-30T04:00:00.000Z info  listener web stopped accepting; its flows get 600000 ms\n');
    assert.equal(
      formatEvent({ type: 'rules.applied', backend: 'nft', table: 'inet tproxy_rules', listeners: 1, draining: ['web'], policyRoutes: 2, failMode: 'drop' }, 'text', at),
      '2026-11-30T04:00:00.000Z info  rules applied (backend nft, inet tproxy_rules, 2 policy routes, fail mode drop; kept for draining listeners web)\n',
    );
  });

  it('reloads: applied at info with what changed, rejected at warn with why', () => {
    assert.equal(
      formatEvent({ type: 'reload.applied', kept: ['web'], added: ['dns'], removed: [], changed: [], rulesChanged: true }, 'text', at),
      '2026-11-30T04:00:00.000Z info  reload applied: listeners added dns, removed none, changed none, kept web; rules replaced\n',
    );
    assert.equal(
      formatEvent({ type: 'reload.applied', kept: ['web', 'dns'], added: [], removed: [], changed: [], flowEventsSwitched: ['web', 'dns'], rulesChanged: false }, 'text', at),
      '2026-11-30T04:00:00.000Z info  reload applied: listeners added none, removed none, changed none, kept web, dns (per-flow events switched in place in web, dns); rules unchanged\n',
    );
    assert.equal(
      formatEvent({ type: 'reload.applied', kept: ['web'], added: [], removed: [], changed: [], routingSwitched: ['web'], rulesChanged: false }, 'text', at),
      '2026-11-30T04:00:00.000Z info  reload applied: listeners added none, removed none, changed none, kept web (routes swapped in place in web: flows in progress keep their outbound); rules unchanged\n',
    );
    const rejected = JSON.parse(formatEvent({ type: 'reload.rejected', error: 'tproxy.yaml:2:11: listeners[0].port: 0 is not allowed' }, 'json', at)) as Record<string, unknown>;
    assert.deepEqual([rejected.level, rejected.msg], ['warn', 'reload rejected, the running configuration stays: tproxy.yaml:2:11: listeners[0].port: 0 is not allowed']);
    assert.equal(
      formatEvent({ type: 'ready', pid: 9, listeners: [{ name: 'web', port: 8000, tcpWorkers: [10], maxConnectionsPerWorker: 100, capacity: 'as configured' }, { name: 'dns', port: 8053, tcpWorkers: [11], maxConnectionsPerWorker: 100, capacity: 'as configured' }], tcpWorkers: [10, 11], maxConnectionsPerWorker: 100 }, 'text', at),
      '2026-11-30T04:00:00.000Z info  ready: pid 9, listeners web (port 8000), dns (port 8053), tcp workers 10, 11, at most 100 connections per worker\n',
    );
  });

  it('levels: flows at debug, a worker that dies for good at error, one restarted at warn', () => {
    assert.equal(levelOf(close), 'debug');
    assert.equal(levelOf({ type: 'udp.session.open', id: 1, client: close.client, originalDestination: close.originalDestination, upstreamLocal: close.client, mapping: 'endpoint-dependent' }), 'debug');
    assert.equal(levelOf({ type: 'worker.exit', pid: 1, exitCode: 1, signal: null, restarting: true, lostFlows: 0 }), 'warn');
    assert.equal(levelOf({ type: 'worker.exit', pid: 1, exitCode: 1, signal: null, restarting: false, lostFlows: 0 }), 'error');
    assert.equal(levelOf({ type: 'ready', pid: 1 }), 'info');
  });

  it('mmproxy UDP sessions: debug lines with the balancer, the client, the backend and the counts; a UDP loop that left budget entries: warn', () => {
    const balancer = { family: 4 as const, address: '198.51.100.2', port: 5000 };
    const client = { family: 4 as const, address: '192.0.2.10', port: 40000 };
    const destination = { family: 4 as const, address: '203.0.113.53', port: 53 };
    const backend = { family: 4 as const, address: '127.0.0.1', port: 5353 };
    const open: LogEvent = { type: 'mmproxy.udp.open', listener: 'dns', id: 3, balancer, client, originalDestination: destination, backend };
    const close: LogEvent = { type: 'mmproxy.udp.close', listener: 'dns', id: 3, balancer, client, originalDestination: destination, backend, datagramsFromClient: 2, datagramsFromBackend: 1, bytesFromClient: 80, bytesFromBackend: 120, durationMs: 61000, reason: 'idle' };
    assert.deepEqual([levelOf(open), levelOf(close)], ['debug', 'debug']);
    assert.equal(messageOf(open), 'mmproxy dns udp #3 192.0.2.10:40000 -> 203.0.113.53:53 via 198.51.100.2:5000 session opened (backend 127.0.0.1:5353)');
    assert.equal(messageOf(close), 'mmproxy dns udp #3 192.0.2.10:40000 -> 203.0.113.53:53 via 198.51.100.2:5000 -> 127.0.0.1:5353 session closed (idle): 2 datagrams / 80 bytes up, 1 / 120 down, 61000 ms');
    const reclaimed: LogEvent = { type: 'udp.loop.reclaimed', port: 8000, descriptors: 11, sockets: 10 };
    assert.equal(levelOf(reclaimed), 'warn');
    assert.equal(messageOf(reclaimed), 'udp relay loop on port 8000 ended without closing everything (stop timeout or failed shutdown): 10 sockets it left open closed, 11 descriptor budget entries given back');
    const uring: LogEvent = { ...reclaimed, descriptors: 12, engineDescriptors: 2 };
    assert.equal(messageOf(uring), 'udp relay loop on port 8000 ended without closing everything (stop timeout or failed shutdown): 10 sockets it left open closed, its io_uring ring torn down (2 engine descriptors closed), 12 descriptor budget entries given back');
    assert.match(messageOf({ ...uring, engineDescriptors: 1, engineErrors: ['close(epoll): EBADF'] }), /ring torn down \(1 engine descriptors closed; failed: close\(epoll\): EBADF\)/);
  });

  it('a crashed worker\'s line says how many flows it lost and how they ended', () => {
    assert.equal(
      messageOf({ type: 'worker.exit', pid: 7, exitCode: null, signal: 'SIGKILL', restarting: true, lostFlows: 8 }),
      'tcp worker 7 exited (code -, signal SIGKILL): 8 flows lost (reset toward both peers; counted as closed worker-lost), restarting',
    );
    assert.equal(messageOf({ type: 'worker.exit', pid: 7, exitCode: 1, signal: null, restarting: false, lostFlows: 0 }), 'tcp worker 7 exited (code 1, signal -), not restarted');
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

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { LogEvent } from '../../src/daemon/log.js';
import { RunSignals } from '../../src/cli/run-signals.js';

function setup(): { source: EventEmitter; signals: RunSignals; logged: LogEvent[] } {
  const source = new EventEmitter();
  const logged: LogEvent[] = [];
  return { source, signals: new RunSignals(source, (e) => logged.push(e)), logged };
}

const actions = (logged: LogEvent[]): string[] =>
  logged.filter((e) => e.type === 'signal').map((e) => {
    const { signal, action } = e as { signal?: unknown; action?: unknown };
    return `${String(signal)} ${String(action)}`;
  });

describe('RunSignals', () => {
  it('handles every signal from the start: none is left to its default action', () => {
    const { source, signals } = setup();
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) assert.equal(source.listenerCount(signal), 1, signal);
    signals.dispose();
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) assert.equal(source.listenerCount(signal), 0, signal);
  });

  it('queues a SIGHUP that comes during the start and reloads once started, once', () => {
    const { source, signals, logged } = setup();
    source.emit('SIGHUP');
    source.emit('SIGHUP');
    let reloads = 0;
    signals.running(() => reloads++);
    assert.equal(reloads, 1);
    source.emit('SIGHUP');
    assert.equal(reloads, 2);
    assert.deepEqual(actions(logged), ['SIGHUP reload-queued', 'SIGHUP reload-queued', 'SIGHUP reload']);
  });

  it('stops at the first stop signal; the second stops now; later ones and SIGHUP while stopping are ignored', async () => {
    const { source, signals, logged } = setup();
    let reloads = 0;
    signals.running(() => reloads++);
    source.emit('SIGTERM');
    assert.deepEqual(await signals.stopRequested, { kind: 'signal', signal: 'SIGTERM' });
    let hurried = 0;
    signals.stopping(() => hurried++);
    source.emit('SIGHUP');
    source.emit('SIGINT');
    source.emit('SIGTERM');
    assert.equal(hurried, 1);
    assert.equal(reloads, 0);
    assert.deepEqual(actions(logged), ['SIGTERM stop', 'SIGHUP ignored', 'SIGINT stop-now', 'SIGTERM ignored']);
  });

  it('remembers a second stop signal that came before the stop could begin (during the start)', async () => {
    const { source, signals } = setup();
    source.emit('SIGINT');
    source.emit('SIGINT');
    source.emit('SIGHUP');
    let reloads = 0;
    signals.running(() => reloads++);
    assert.equal(reloads, 0, 'no reload once a stop was asked for');
    await signals.stopRequested;
    let hurried = 0;
    signals.stopping(() => hurried++);
    assert.equal(hurried, 1);
  });

  it('turns a failure into a stop; a later signal does not change the cause', async () => {
    const { source, signals } = setup();
    signals.fail(new Error('udp relay loop stopped'));
    source.emit('SIGTERM');
    const cause = await signals.stopRequested;
    assert.equal(cause.kind, 'failure');
  });
});

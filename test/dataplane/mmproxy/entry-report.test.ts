import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProxyHeader } from '../../../src/core/proxy-protocol/header.js';
import type { ProxyEvent } from '../../../src/dataplane/events.js';
import { EntryReport } from '../../../src/dataplane/mmproxy/entry-report.js';
import type { FromMmproxyEngine, MmproxyEngineConfig } from '../../../src/dataplane/mmproxy/splice-protocol.js';
import { ReportedCounters } from '../../../src/dataplane/tcp/splice/timers.js';

const balancer = { family: 4, address: '192.0.2.1', port: 40000 } as const;
const client = { family: 4, address: '198.51.100.7', port: 51000 } as const;
const service = { family: 4, address: '203.0.113.5', port: 443 } as const;

function config(over: Partial<MmproxyEngineConfig> = {}, flowEvents = true): MmproxyEngineConfig {
  const flag = new SharedArrayBuffer(4);
  new Int32Array(flag)[0] = flowEvents ? 1 : 0;
  return {
    name: 'web', listeners: [], accepting: new SharedArrayBuffer(4), flowEvents: flag, allowedSources: [], headerTimeoutMs: 1000, maxHeaderBytes: 4096,
    upstreamMark: 0, connectTimeoutMs: 1000, idleTimeoutMs: 1000, pipeBytes: 65536, countersIntervalMs: 1000, ...over,
  };
}

const proxyHeader: ProxyHeader = { version: 2, command: 'proxy', transport: 'tcp', addresses: { source: client, destination: service }, tlvs: [] };
const localHeader: ProxyHeader = { version: 2, command: 'local', transport: 'unspec', tlvs: [] };

function posted(report: EntryReport, countersDue = false): FromMmproxyEngine[] {
  const messages: FromMmproxyEngine[] = [];
  report.post((m) => void messages.push(m), () => [], 0, countersDue, new ReportedCounters(), false);
  return messages;
}

describe('EntryReport', () => {
  it('routes a PROXY header to its destination, or to the fixed backend of its family, from the client it names', () => {
    assert.deepEqual(new EntryReport(config(), () => 0).route(proxyHeader, balancer), { kind: 'proxy', source: client, backend: service });
    const fixed = new EntryReport(config({ backend4: { address: '203.0.113.9', port: 8080 } }), () => 0);
    assert.deepEqual(fixed.route(proxyHeader, balancer), { kind: 'proxy', source: client, backend: { family: 4, address: '203.0.113.9', port: 8080 } });
    assert.equal(fixed.counters.headersProxy, 1);
  });

  it('refuses a header whose family has only a fixed backend of the other family', () => {
    const report = new EntryReport(config({ backend4: { address: '2001:db8::9', port: 8080 } }), () => 0);
    assert.deepEqual(report.route(proxyHeader, balancer), { kind: 'refuse', reason: 'backend-family' });
  });

  it('sends a LOCAL header to the health target (or nowhere), counted and reported when events are asked for', () => {
    const report = new EntryReport(config({ healthTarget: { address: '2001:db8::1', port: 80 } }), () => 0);
    assert.deepEqual(report.route(localHeader, balancer), { kind: 'local', target: { family: 6, address: '2001:db8::1', port: 80 } });
    assert.equal(report.counters.headersLocal, 1);
    const [events] = posted(report);
    assert.deepEqual(events?.kind === 'events' ? events.events : [], [{ type: 'mmproxy.local', listener: 'web', balancer }]);
    const quiet = new EntryReport(config({}, false), () => 0);
    assert.deepEqual(quiet.route(localHeader, balancer), { kind: 'local', target: undefined });
    assert.deepEqual(posted(quiet), []);
  });

  it('reports a source not allowed only when events are asked for, a bad header always; both counted', () => {
    const quiet = new EntryReport(config({}, false), () => 0);
    quiet.refused(balancer, 'source-not-allowed');
    quiet.refused(balancer, 'bad-signature');
    assert.deepEqual(quiet.counters.rejected, { 'source-not-allowed': 1, 'bad-signature': 1 });
    const [message] = posted(quiet);
    assert.deepEqual(message?.kind === 'events' ? message.events.map((e: ProxyEvent) => e.type === 'mmproxy.reject' && e.reason) : [], ['bad-signature']);
  });

  it('counts a closed flow and its bytes, and the open flows in a snapshot; the counters posted when due', () => {
    const report = new EntryReport(config({}, false), () => 250);
    report.counters.active = 1;
    report.closed({ balancer, from: client, started: 100, up: { bytes: 10 }, down: { bytes: 20 } }, service, 'done');
    assert.deepEqual(posted(report), []);
    const snapshot = report.snapshot([{ up: { bytes: 1 }, down: { bytes: 2 } }]);
    assert.deepEqual([snapshot.active, snapshot.closed, snapshot.bytesFromClient, snapshot.bytesFromBackend], [0, { done: 1 }, 11, 22]);
    const [due] = posted(report, true);
    assert.equal(due?.kind, 'counters');
    const loud = new EntryReport(config(), () => 250);
    loud.closed({ balancer, from: undefined, started: 100, up: { bytes: 0 }, down: { bytes: 0 } }, service, 'idle-timeout');
    const [events] = posted(loud);
    assert.deepEqual(events?.kind === 'events' ? events.events : [], [
      { type: 'mmproxy.close', listener: 'web', balancer, backend: service, bytesFromClient: 0, bytesFromBackend: 0, durationMs: 150, reason: 'idle-timeout' },
    ]);
  });

  it('carries the shared pipes\' counts (splice engine) in every snapshot it posts, the periodic ones and those with events', () => {
    const report = new EntryReport(config(), () => 0);
    const pipes = { resizesRefused: 1, waits: 7, waiting: 2 };
    report.pipes = pipes;
    const [due] = posted(report, true);
    assert.deepEqual(due?.kind === 'counters' ? [due.counters.pipeResizesRefused, due.counters.pipeWaits, due.counters.pipeWaiting] : [], [1, 7, 2]);
    pipes.waiting = 0;
    report.refused(balancer, 'bad-signature');
    const [events] = posted(report);
    assert.deepEqual(events?.kind === 'events' ? [events.counters.pipeWaits, events.counters.pipeWaiting] : [], [7, 0]);
    const none = new EntryReport(config(), () => 0).snapshot([]);
    assert.deepEqual([none.pipeResizesRefused, none.pipeWaits, none.pipeWaiting], [0, 0, 0], 'none without pipes (the uring engine)');
  });
});

import assert from 'node:assert/strict';
import perfHooks from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { FAMILY_LIST, metricValues, type MetricsSnapshot } from '../../src/daemon/metric-families.js';
import { EVENT_LOOP_SAMPLE_MS, PrometheusExposition } from '../../src/daemon/prometheus.js';
import { emptyTcpCounters } from '../../src/dataplane/tcp/counters.js';
import { snapshotCounters, UDP_COUNTER_SLOTS, UDP_ERROR_REASONS, type UdpRoutedCounters } from '../../src/dataplane/udp/counters.js';
import { parsePromText } from '../helpers/prometheus-text.js';

const routed = (sessions: number, rejected: number, bytesFromClients: number): UdpRoutedCounters => ({ sessions, rejected, failed: 0, datagramsFromClients: 1, bytesFromClients, datagramsFromServers: 1, bytesFromServers: 5 });
const udp = {
  ...snapshotCounters(new Float64Array(UDP_COUNTER_SLOTS)),
  routes: { blocked: routed(0, 6, 0), default: routed(9, 0, 4000) },
  outbounds: { reject: routed(0, 6, 0), direct: routed(9, 0, 4000), corp: { ...routed(3, 0, 10), failed: 2 } },
  quicSniffs: 5,
  quicNames: 2,
  sessionsActive: 2, sessionsCreated: 9, sessionsClosed: 7, sessionsExpired: 5, sessionsClosedByOperator: 0, sessionsEvicted: 4, sessionsEvictedForDescriptors: 3, datagramsFromClients: 40, bytesFromClients: 4000, datagramsFromServers: 38, bytesFromServers: 3800, peersCreated: 9, replyFallbacks: 1, raceHandovers: 3 };
udp.errors['upstream-refused'] = 4;

const snapshot: MetricsSnapshot = {
  build: { version: '0.1.0', node: 'v20.20.2', engine: 'splice' },
  startTimeSeconds: 1_800_000_000,
  listeners: [
    {
      name: 'main',
      counters: {
        tcp: { ...emptyTcpCounters(), accepted: 12, active: 3, refused: { 'not-intercepted': 1, loop: 2, limit: 0 }, connectErrors: { ECONNREFUSED: 4, 'connect-timeout': 1 }, closed: { done: 6, 'client-ECONNRESET': 2 }, bytesFromClient: 1000, bytesFromServer: 250_000, acceptPauses: 1, clientPortFallbacks: 2, pipeWaits: 9, pipeWaiting: 1, pipeResizesRefused: 5 },
        udp,
      },
      workers: { running: 2, restarts: 1 },
      capacity: { configured: 100_000, perWorker: 7974, limitedBy: 'descriptors', fileLimit: 20_000, descriptorsPerFlow: 2, sharedPipes: 1994, neededFileLimit: 250_064 },
    },
    { name: 'dns', counters: { tcp: { ...emptyTcpCounters(), accepted: 1 } }, workers: { running: 1, restarts: 0 }, capacity: { configured: 100, perWorker: 100, limitedBy: 'configured', fileLimit: 20_000, descriptorsPerFlow: 2, sharedPipes: 64, neededFileLimit: 392 } },
  ],
  rules: { managed: true, backend: 'nft', inPlace: true, counters: [{ rule: 'prerouting: tproxy: intercept tcp ipv4', packets: 30, bytes: 2400 }, { rule: 'prerouting: tproxy: intercept udp ipv6', packets: 0, bytes: 0 }] },
  rulesReadFailures: 0,
  errors: { EMFILE: 2 },
  descriptors: {
    capacity: 900,
    inUse: 120,
    childReserve: 32,
    stopReserve: 16,
    byConsumer: { tcp: { inUse: 0, refused: 0 }, udp: { inUse: 86, refused: 7 }, child: { inUse: 0, refused: 1 }, admin: { inUse: 17, refused: 0 }, metrics: { inUse: 17, refused: 0 }, mmproxy: { inUse: 0, refused: 0 } },
  },
  mmproxy: {
    lb: { headersProxy: 20, headersLocal: 3, rejected: { 'source-not-allowed': 4, 'header-timeout': 1, 'v2-too-long': 2 }, connectErrors: { ECONNREFUSED: 1 }, closed: { done: 18 }, active: 1, bytesFromClient: 700, bytesFromBackend: 9000, pipeResizesRefused: 2, pipeWaits: 6, pipeWaiting: 1 },
  },
};

const main = { listener: 'main' };
const sample = (name: string, labels: Record<string, string> = {}): number | undefined => {
  const values = metricValues(snapshot).find((v) => v.family.name === name);
  return values?.samples.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
};

describe('metric families (pure mapping)', () => {
  it('maps the splice engine\'s pipe waits: a counter and a gauge per listener', () => {
    assert.equal(sample('tproxy_tcp_pipe_waits_total', main), 9);
    assert.equal(sample('tproxy_tcp_pipe_waiting', main), 1);
    assert.equal(sample('tproxy_tcp_pipe_waits_total', { listener: 'dns' }), 0);
    assert.equal(FAMILY_LIST.find((f) => f.name === 'tproxy_tcp_pipe_waiting')?.type, 'gauge');
    assert.equal(sample('tproxy_tcp_pipe_resizes_refused_total', main), 5);
    assert.equal(sample('tproxy_mmproxy_pipe_resizes_refused_total', { listener: 'lb' }), 2);
    assert.equal(sample('tproxy_mmproxy_pipe_waits_total', { listener: 'lb' }), 6);
    assert.equal(sample('tproxy_mmproxy_pipe_waiting', { listener: 'lb' }), 1);
    assert.equal(FAMILY_LIST.find((f) => f.name === 'tproxy_mmproxy_pipe_waiting')?.type, 'gauge');
  });

  it('maps the mmproxy listeners: headers by command, rejections by reason, flows and bytes; absent without any', () => {
    const lb = { listener: 'lb' };
    assert.equal(sample('tproxy_mmproxy_headers_total', { ...lb, command: 'proxy' }), 20);
    assert.equal(sample('tproxy_mmproxy_headers_total', { ...lb, command: 'local' }), 3);
    assert.equal(sample('tproxy_mmproxy_rejected_total', { ...lb, reason: 'source-not-allowed' }), 4);
    assert.equal(sample('tproxy_mmproxy_rejected_total', { ...lb, reason: 'v2-too-long' }), 2);
    assert.equal(sample('tproxy_mmproxy_connections_active', lb), 1);
    assert.equal(sample('tproxy_mmproxy_connections_closed_total', { ...lb, reason: 'done' }), 18);
    assert.equal(sample('tproxy_mmproxy_connect_errors_total', { ...lb, errno: 'ECONNREFUSED' }), 1);
    assert.equal(sample('tproxy_mmproxy_bytes_total', { ...lb, direction: 'from_server' }), 9000);
    // One family for both transports: its help says what a TCP and what a UDP entry counts.
    const help = FAMILY_LIST.find((f) => f.name === 'tproxy_mmproxy_rejected_total')?.help ?? '';
    assert.match(help, /TCP entries count connections reset/);
    assert.match(help, /UDP entries count datagrams dropped/);
    for (const reason of ['not-dgram', 'session-limit', 'descriptor-budget']) assert.ok(help.includes(reason), reason);
    const { mmproxy: _none, ...without } = snapshot;
    assert.ok(!metricValues(without).some((v) => v.family.name.startsWith('tproxy_mmproxy_')));
  });

  it('has unique, well-formed names; counters end in _total, every label is declared', () => {
    const names = FAMILY_LIST.map((f) => f.name);
    assert.equal(new Set(names).size, names.length);
    for (const f of FAMILY_LIST) {
      assert.match(f.name, /^tproxy_[a-z0-9_]+$/);
      assert.equal(f.name.endsWith('_total'), f.type === 'counter', f.name);
    }
    let checked = 0;
    for (const { family, samples } of metricValues(snapshot)) {
      for (const s of samples) {
        assert.deepEqual(Object.keys(s.labels).sort(), [...family.labelNames].sort(), family.name);
        checked++;
      }
    }
    // The loop above checks nothing when the snapshot yields no samples: it must yield some.
    assert.ok(checked > 0, 'the snapshot gives samples whose labels are checked');
  });

  it('maps TCP counters per listener: active, accepted, bytes each way, refusals, connect errors and closes by label', () => {
    assert.equal(sample('tproxy_tcp_connections_active', main), 3);
    assert.equal(sample('tproxy_tcp_connections_total', main), 12);
    assert.equal(sample('tproxy_tcp_connections_total', { listener: 'dns' }), 1);
    assert.equal(sample('tproxy_tcp_bytes_total', { ...main, direction: 'from_client' }), 1000);
    assert.equal(sample('tproxy_tcp_bytes_total', { ...main, direction: 'from_server' }), 250_000);
    assert.equal(sample('tproxy_tcp_refused_total', { ...main, reason: 'loop' }), 2);
    assert.equal(sample('tproxy_tcp_refused_total', { ...main, reason: 'limit' }), 0, 'every refusal reason is exported, also at 0');
    assert.equal(sample('tproxy_tcp_connect_errors_total', { ...main, errno: 'ECONNREFUSED' }), 4);
    assert.equal(sample('tproxy_tcp_connect_errors_total', { ...main, errno: 'connect-timeout' }), 1);
    assert.equal(sample('tproxy_tcp_connections_closed_total', { ...main, reason: 'client-ECONNRESET' }), 2);
    assert.equal(sample('tproxy_tcp_worker_restarts_total', main), 1);
    assert.equal(sample('tproxy_tcp_workers', main), 2);
    assert.equal(sample('tproxy_tcp_max_connections', { ...main, limit: 'descriptors' }), 7974, 'the cap in force, and that the file limit set it');
    assert.equal(sample('tproxy_tcp_max_connections_configured', main), 100_000);
    assert.equal(sample('tproxy_tcp_max_connections', { listener: 'dns', limit: 'configured' }), 100);
    assert.equal(metricValues(snapshot).filter((v) => v.family.name === 'tproxy_tcp_connections_total').length, 1, 'one family, a sample per listener');
  });

  it('maps UDP counters, with every error reason, for the listeners that relay UDP', () => {
    assert.equal(sample('tproxy_udp_sessions_active', main), 2);
    assert.equal(sample('tproxy_udp_sessions_total', main), 9);
    assert.equal(sample('tproxy_udp_sessions_expired_total', main), 5);
    assert.equal(sample('tproxy_udp_datagrams_total', { ...main, direction: 'from_server' }), 38);
    assert.equal(sample('tproxy_udp_bytes_total', { ...main, direction: 'from_client' }), 4000);
    assert.equal(sample('tproxy_udp_errors_total', { ...main, reason: 'upstream-refused' }), 4);
    assert.equal(sample('tproxy_udp_errors_total', { ...main, reason: 'client-busy' }), 0);
    assert.equal(metricValues(snapshot).find((v) => v.family.name === 'tproxy_udp_errors_total')?.samples.length, UDP_ERROR_REASONS.length, 'one sample per reason');
    assert.equal(sample('tproxy_udp_sessions_evicted_total', { ...main, reason: 'session-limit' }), 1);
    assert.equal(sample('tproxy_udp_sessions_evicted_total', { ...main, reason: 'descriptor-limit' }), 3);
    assert.equal(sample('tproxy_udp_sessions_total', { listener: 'dns' }), undefined);
    assert.equal(sample('tproxy_udp_route_sessions_total', { ...main, route: 'default' }), 9);
    assert.equal(sample('tproxy_udp_route_bytes_total', { ...main, route: 'default', direction: 'from_client' }), 4000);
    assert.equal(sample('tproxy_udp_outbound_sessions_total', { ...main, outbound: 'direct' }), 9);
    assert.equal(sample('tproxy_udp_outbound_bytes_total', { ...main, outbound: 'reject', direction: 'from_server' }), 5);
    assert.equal(sample('tproxy_udp_rejected_datagrams_total', { ...main, route: 'blocked' }), 6);
    assert.equal(sample('tproxy_udp_outbound_failed_sessions_total', { ...main, outbound: 'corp' }), 2);
    assert.equal(sample('tproxy_udp_outbound_failed_sessions_total', { ...main, outbound: 'direct' }), 0);
    assert.equal(sample('tproxy_udp_quic_sniffs_total', { ...main, outcome: 'quic' }), 2);
    assert.equal(sample('tproxy_udp_quic_sniffs_total', { ...main, outcome: 'none' }), 3);
  });

  it('maps the daemon process descriptor budget: capacity, in use and refused by consumer', () => {
    assert.equal(sample('tproxy_descriptors_capacity'), 900);
    assert.equal(sample('tproxy_descriptors_in_use', { consumer: 'udp' }), 86);
    assert.equal(sample('tproxy_descriptors_in_use', { consumer: 'metrics' }), 17);
    assert.equal(sample('tproxy_descriptors_refused_total', { consumer: 'udp' }), 7);
    assert.equal(sample('tproxy_descriptors_refused_total', { consumer: 'child' }), 1);
  });

  it('maps the kernel rule counters and build info', () => {
    assert.equal(sample('tproxy_rule_packets_total', { rule: 'prerouting: tproxy: intercept tcp ipv4' }), 30);
    assert.equal(sample('tproxy_rule_bytes_total', { rule: 'prerouting: tproxy: intercept tcp ipv4' }), 2400);
    assert.equal(sample('tproxy_rules_in_place', { backend: 'nft' }), 1);
    assert.equal(sample('tproxy_build_info', { version: '0.1.0', node: 'v20.20.2', engine: 'splice' }), 1);
    assert.equal(sample('tproxy_errors_total', { code: 'EMFILE' }), 2);
  });

  it('leaves out what does not apply: UDP when not relayed, rules with --no-rules, rule counters when the read failed', () => {
    const names = (s: MetricsSnapshot): string[] => metricValues(s).map((v) => v.family.name);
    const tcpOnly = names({ ...snapshot, listeners: snapshot.listeners.map((l) => ({ ...l, counters: { tcp: l.counters.tcp } })), rules: { managed: false } });
    assert.equal(tcpOnly.some((n) => n.startsWith('tproxy_udp_') || n.startsWith('tproxy_rule')), false);
    const failed = names({ ...snapshot, rules: { managed: true, backend: 'nft', error: 'nft: exit 1' }, rulesReadFailures: 3 });
    assert.ok(failed.includes('tproxy_rules_read_failures_total'));
    assert.equal(failed.includes('tproxy_rule_packets_total'), false);
    assert.equal(failed.includes('tproxy_rules_in_place'), false);
  });

  it('prom-client writes them as Prometheus text that parses back to the same values', async () => {
    const text = await new PrometheusExposition({ processMetrics: false }).render(metricValues(snapshot));
    const parsed = parsePromText(text);
    assert.equal(parsed.types.get('tproxy_tcp_bytes_total'), 'counter');
    assert.equal(parsed.types.get('tproxy_tcp_connections_active'), 'gauge');
    assert.equal(parsed.value('tproxy_tcp_bytes_total', { listener: 'main', direction: 'from_server' }), 250_000);
    assert.equal(parsed.value('tproxy_rule_packets_total', { rule: 'prerouting: tproxy: intercept tcp ipv4' }), 30);
    assert.equal(parsed.value('tproxy_udp_sessions_total', main), 9);
    assert.equal(parsed.samples.some((s) => s.name.startsWith('process_')), false);
    const withProcess = parsePromText(await new PrometheusExposition().render(metricValues(snapshot)));
    assert.ok((withProcess.value('process_resident_memory_bytes') ?? 0) > 0, 'process metrics of prom-client are included');
  });

  it('the process metrics sample the event loop once a second, not 100 times (an idle daemon is not woken for them)', () => {
    // prom-client looks perf_hooks.monitorEventLoopDelay up when it starts its histogram: see what it asks for.
    const original = perfHooks.monitorEventLoopDelay;
    const asked: (number | undefined)[] = [];
    perfHooks.monitorEventLoopDelay = (options) => {
      asked.push(options?.resolution);
      return original(options);
    };
    try {
      new PrometheusExposition();
    } finally {
      perfHooks.monitorEventLoopDelay = original;
    }
    assert.deepEqual(asked, [EVENT_LOOP_SAMPLE_MS]);
    assert.ok(EVENT_LOOP_SAMPLE_MS >= 1000);
  });

  it('a fresh registry per scrape: a series gone from the snapshot is gone from the text', async () => {
    const exposition = new PrometheusExposition({ processMetrics: false });
    await exposition.render(metricValues(snapshot));
    const later = parsePromText(await exposition.render(metricValues({ ...snapshot, errors: {} })));
    assert.equal(later.value('tproxy_errors_total', { code: 'EMFILE' }), undefined);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatColumns, parseIperf3, parseIperf3Received, parseWrk, summarize } from '../../src/bench/stats.js';

describe('bench statistics and parsers', () => {
  it('summarises samples', () => {
    assert.deepEqual(summarize([3, 1, 2]), { median: 2, min: 1, max: 3, samples: [3, 1, 2] });
    assert.equal(summarize([4, 1, 2, 3]).median, 2.5);
    assert.ok(Number.isNaN(summarize([]).median));
  });

  it('reads iperf3 JSON and its errors', () => {
    assert.equal(parseIperf3(JSON.stringify({ end: { sum_received: { bits_per_second: 1.5e10 } } })), 1.5e10);
    assert.throws(() => parseIperf3(JSON.stringify({ error: 'unable to connect to server' })), /iperf3: unable to connect/);
    assert.deepEqual(parseIperf3Received(JSON.stringify({ end: { sum_received: { bits_per_second: 8e9, bytes: 5e9 } } })), { bitsPerSecond: 8e9, bytes: 5e9 });
    // iperf3's CPU percentages (of one CPU, over the test) become each endpoint's CPU seconds.
    assert.deepEqual(parseIperf3Received(JSON.stringify({ end: { sum_received: { bits_per_second: 8e9, bytes: 5e9, seconds: 4 }, cpu_utilization_percent: { host_total: 50, remote_total: 75.5 } } })), {
      bitsPerSecond: 8e9,
      bytes: 5e9,
      cpuSeconds: { client: 2, server: 3.02 },
    });
  });

  it('reads wrk output with latency distribution', () => {
    const text = `Running 5s test @ http://203.0.113.20/
  1 threads and 50 connections
  Latency Distribution
     50%    1.20ms
     75%  850.00us
     90%    2.10ms
     99%    1.05s
  40000 requests in 5.00s, 5.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
Requests/sec:   8000.50
Transfer/sec:      1.00MB
`;
    assert.deepEqual(parseWrk(text), { requestsPerSecond: 8000.5, requests: 40000, latencyMs: { p50: 1.2, p75: 0.85, p90: 2.1, p99: 1050 }, errors: 4 });
    assert.throws(() => parseWrk('unable to connect'), /no Requests\/sec line/);
    assert.throws(() => parseWrk('Requests/sec: 1.0\n'), /no "N requests in" line/);
  });

  it('lays rows out in left-aligned columns', () => {
    assert.equal(formatColumns([['workload', 'tproxy'], ['tcp-throughput-1', '0.61x']]), 'workload          tproxy\ntcp-throughput-1  0.61x ');
  });
});

// The daemon as an operator sees it: Prometheus metrics over HTTP while real TCP and UDP flow,
// tproxy status over the admin socket with a flow in progress, and the socket's protections.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A } from '../../src/lab/topology.js';
import type { DaemonStatus } from '../../src/daemon/admin-protocol.js';
import { probe } from '../helpers/lab-flows.js';
import { BIN } from '../helpers/paths.js';
import { parsePromText, type PromText } from '../helpers/prometheus-text.js';
import { startAdminProxyLab, type AdminProxyLab } from '../helpers/proxy-lab.js';
import { runTproxy } from '../helpers/tproxy-process.js';
import { until } from '../helpers/until.js';

const METRICS = '127.0.0.1:9464';
const INTERCEPT_TCP = 'prerouting: tproxy: intercept tcp ipv4';
const MAIN = { listener: 'main' };
const INTERCEPT_UDP = 'prerouting: tproxy: intercept udp ipv6';

describe('metrics and tproxy status of a running daemon (root)', () => {
  let p: AdminProxyLab;
  let socket: string;
  before(async () => {
    p = await startAdminProxyLab('ops', ['--intercept', 'tcp:81', '--intercept', 'udp:80', '--workers', '2', '--table', 'tproxy_ops', '--route-table', '131', '--rule-priority', '9131', '--metrics-address', METRICS], { echo: true });
    socket = p.socket;
  });
  after(() => p?.close());

  const scrape = async (): Promise<PromText> => {
    const script = `fetch('http://${METRICS}/metrics').then(async (r) => { process.stdout.write(r.headers.get('content-type') + '\\n' + await r.text()); })`;
    const out = await p.lab.run('router', [process.execPath, '-e', script]);
    const [contentType, ...body] = out.stdout.split('\n');
    assert.match(contentType ?? '', /^text\/plain; version=0\.0\.4/);
    return parsePromText(body.join('\n'));
  };
  const status = async (): Promise<DaemonStatus> => {
    const r = await runTproxy(['status', '--socket', socket, '--json', '--top', '5']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as DaemonStatus;
  };

  it('serves Prometheus text whose values move with real TCP and UDP traffic and the kernel rule counters', async () => {
    const first = await scrape();
    assert.equal(first.value('tproxy_build_info', { version: '0.1.0', node: process.version, engine: 'splice' }), 1);
    assert.equal(first.value('tproxy_rules_in_place', { backend: 'nft' }), 1);
    assert.equal(first.value('tproxy_tcp_workers', MAIN), 2);
    assert.ok((first.value('process_resident_memory_bytes') ?? 0) > 0);
    const tcpBefore = first.value('tproxy_tcp_bytes_total', { ...MAIN, direction: 'from_client' }) ?? -1;
    const rulesBefore = first.value('tproxy_rule_packets_total', { rule: INTERCEPT_TCP }) ?? -1;

    const bulk = await p.client<{ how: string; receivedBytes: number }>('bulk', A.server.ipv4, 81, 300_000);
    assert.equal(bulk.receivedBytes, 300_000);
    for (const host of [A.server.ipv6, A.server.ipv4]) assert.equal((await probe(p.lab, 'client', 'udp', host, 'metrics udp')).ok, true);

    // Read at scrape time from every worker: no wait for a periodic report.
    const later = await scrape();
    assert.ok((later.value('tproxy_tcp_bytes_total', { ...MAIN, direction: 'from_client' }) ?? 0) >= tcpBefore + 300_000, 'tcp bytes from the client');
    assert.ok((later.value('tproxy_tcp_bytes_total', { ...MAIN, direction: 'from_server' }) ?? 0) >= 300_000, 'the echo came back through the proxy');
    assert.ok((later.value('tproxy_tcp_connections_total', MAIN) ?? 0) >= 1);
    assert.ok((later.value('tproxy_tcp_connections_closed_total', { ...MAIN, reason: 'done' }) ?? 0) >= 1);
    assert.ok((later.value('tproxy_udp_sessions_total', MAIN) ?? 0) >= 2);
    assert.ok((later.value('tproxy_udp_bytes_total', { ...MAIN, direction: 'from_client' }) ?? 0) > 0);
    assert.ok((later.value('tproxy_udp_datagrams_total', { ...MAIN, direction: 'from_server' }) ?? 0) >= 2);
    assert.ok((later.value('tproxy_rule_packets_total', { rule: INTERCEPT_TCP }) ?? 0) > rulesBefore, 'the kernel counted the TCP flow on our tproxy rule');
    assert.ok((later.value('tproxy_rule_packets_total', { rule: INTERCEPT_UDP }) ?? 0) >= 1, 'and the IPv6 UDP datagram');
    assert.equal(later.types.get('tproxy_rule_packets_total'), 'counter');
  });

  it('tproxy status shows listeners, rules, counters and a flow in progress as the busiest, human and --json', async () => {
    // At least 15 s of trickling (300 KiB, a piece every 50 ms): in progress while status is asked, also on a loaded machine.
    const trickle = p.client<{ how: string; receivedBytes: number }>('trickle', A.server.ipv4, 81, 300);
    const busy = await until(status, (s) => s.flows.some((f) => f.originalDestination.port === 81 && f.bytesFromClient >= 8 * 1024), 15_000, 'the trickling flow among the busiest');
    const flow = busy.flows[0]!;
    assert.equal(flow.client.address, A.client.ipv4);
    assert.deepEqual(flow.originalDestination, { family: 4, address: A.server.ipv4, port: 81 });
    assert.equal(flow.connected, true);
    assert.equal(flow.listener, 'main');
    assert.equal(busy.listeners.length, 1);
    const listener = busy.listeners[0]!;
    assert.ok(listener.workers.pids.includes(flow.pid ?? -1), 'the flow names its worker');
    assert.equal(busy.state, 'running');
    assert.equal(busy.rules.managed && 'inPlace' in busy.rules && busy.rules.inPlace, true);
    assert.ok(listener.counters.tcp.active >= 1);
    assert.deepEqual(listener.sockets.map((l) => `${l.transport} ${l.address}:${l.port}`).sort(), ['tcp 0.0.0.0:8000', 'tcp :::8000', 'udp 0.0.0.0:8000', 'udp :::8000']);

    const text = await runTproxy(['status', '--socket', socket]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^tproxy 0\.1\.0, pid \d+, running, up /m);
    assert.match(text.stdout, /^listener main: tcp 0\.0\.0\.0:8000, tcp \[::\]:8000, udp 0\.0\.0\.0:8000, udp \[::\]:8000$/m);
    assert.match(text.stdout, /^rules: in place \(backend nft, table inet tproxy_ops\)$/m);
    assert.match(text.stdout, /^ {2}prerouting: tproxy: intercept tcp ipv4 +[1-9]\d* packets, /m);
    assert.match(text.stdout, /^ {2}tcp: [1-9]\d* active, /m);
    assert.match(text.stdout, /^ {2}udp: \d+ sessions active, /m);
    assert.match(text.stdout, new RegExp(`^busiest tcp flows \\(top 10 by bytes\\):\\n {2}${A.client.ipv4.replace(/\./g, '\\.')}:\\d+ -> ${A.server.ipv4.replace(/\./g, '\\.')}:81 {2}\\d+\\.\\d KiB up, `, 'm'));
    const done = await trickle;
    assert.equal(done.receivedBytes, 300 * 1024);
  });

  it('keeps the admin socket owner-only (0600) and refuses a second daemon on it before touching anything', async () => {
    const stat = statSync(socket);
    assert.ok(stat.isSocket());
    assert.equal(stat.mode & 0o777, 0o600);
    assert.equal(stat.uid, 0);
    const pid = p.proxy.child.pid ?? -1;
    const second = await p.lab.run('router', [process.execPath, BIN, 'run', '--intercept', 'tcp:82', '--listen', '8200', '--table', 'tproxy_ops2', '--route-table', '132', '--rule-priority', '9132', '--admin-socket', socket], { check: false });
    assert.equal(second.exitCode, 1);
    assert.equal(second.stderr.split('\n').filter((l) => l.startsWith('tproxy run:')).join('\n'), `tproxy run: a running tproxy (pid ${pid}) answers on the admin socket ${socket}: stop it first, or give this daemon another --admin-socket [ERR_CONFLICT]`);
    assert.doesNotMatch((await p.lab.run('router', ['nft', 'list', 'tables'])).stdout, /tproxy_ops2/, 'the refused daemon applied nothing');
    assert.equal((await status()).pid, pid, 'the first daemon still answers');
  });

  it('stops cleanly: rules removed, the socket file gone, the final counts of TCP and UDP reported', async () => {
    p.proxy.child.kill('SIGTERM');
    assert.equal(await p.proxy.exited, 0);
    const stopped = (await p.logs.waitFor((l) => l.type === 'stopped', 10_000, 'the stopped line')) as unknown as { counters: { tcp: { accepted: number }; udp?: { sessionsCreated: number } } } | undefined;
    assert.ok((stopped?.counters.tcp.accepted ?? 0) >= 1);
    assert.equal(typeof stopped?.counters.udp?.sessionsCreated, 'number', 'the UDP relay stopped too, and its counts are in the stopped line');
    assert.throws(() => statSync(socket), /ENOENT/);
    assert.equal((await p.lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '');
  });
});

describe('tproxy status and metrics with the stream engine in the main process (root)', () => {
  let p: AdminProxyLab;
  before(async () => {
    p = await startAdminProxyLab('ops-stream', ['--intercept', 'tcp:81', '--workers', '0', '--tcp-engine', 'stream', '--table', 'tproxy_ops_stream', '--route-table', '134', '--rule-priority', '9134', '--metrics-address', METRICS]);
  });
  after(() => p?.close());

  it('counts the bytes of a flow in progress, at scrape time and in status', async () => {
    const trickle = p.client<{ receivedBytes: number }>('trickle', A.server.ipv6, 81, 300);
    const read = async (): Promise<DaemonStatus> => JSON.parse((await runTproxy(['status', '--socket', p.socket, '--json'])).stdout) as DaemonStatus;
    const busy = await until(read, (s) => (s.flows[0]?.bytesFromClient ?? 0) >= 16 * 1024, 15_000, 'the flow in status');
    const flow = busy.flows[0]!;
    assert.equal(flow.pid, undefined, 'no worker: TCP runs in the main process');
    assert.deepEqual(flow.originalDestination, { family: 6, address: A.server.ipv6, port: 81 });
    assert.ok((busy.listeners[0]?.counters.tcp.bytesFromClient ?? 0) >= flow.bytesFromClient, 'counters include the bytes of flows in progress');
    assert.equal(busy.listeners[0]?.workers.pids.length, 0);
    const script = `fetch('http://${METRICS}/metrics').then(async (r) => process.stdout.write(await r.text()))`;
    const metrics = parsePromText((await p.lab.run('router', [process.execPath, '-e', script])).stdout);
    assert.ok((metrics.value('tproxy_tcp_bytes_total', { ...MAIN, direction: 'from_client' }) ?? 0) >= flow.bytesFromClient, 'and so does a scrape, while the flow runs');
    assert.equal(metrics.value('tproxy_tcp_connections_active', MAIN), 1);
    assert.equal(metrics.value('tproxy_build_info', { version: '0.1.0', node: process.version, engine: 'stream' }), 1);
    assert.equal((await trickle).receivedBytes, 300 * 1024);
  });

  it('reports the final counts of the engine in this process when it stops', async () => {
    p.proxy.child.kill('SIGTERM');
    assert.equal(await p.proxy.exited, 0);
    const stopped = (await p.logs.waitFor((l) => l.type === 'stopped', 10_000, 'the stopped line')) as unknown as { counters: { tcp: { accepted: number; bytesFromServer: number } } } | undefined;
    assert.equal(stopped?.counters.tcp.accepted, 1, 'the one flow of the test above');
    assert.ok((stopped?.counters.tcp.bytesFromServer ?? 0) >= 300 * 1024);
  });
});

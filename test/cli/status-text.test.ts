import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBytes, formatDuration, renderStatus } from '../../src/cli/status-text.js';
import type { DaemonStatus } from '../../src/daemon/admin-protocol.js';
import { emptyTcpCounters } from '../../src/dataplane/tcp/counters.js';

const status: DaemonStatus = {
  state: 'running',
  pid: 42,
  version: '0.1.0',
  node: 'v20.20.2',
  engine: 'splice',
  startedAt: '2026-11-30T04:00:00.000Z',
  uptimeSeconds: 3725,
  listeners: [
    {
      name: 'main',
      sockets: [{ family: 4, address: '0.0.0.0', port: 8000, transport: 'tcp' }, { family: 6, address: '::', port: 8000, transport: 'tcp' }],
      counters: { tcp: { ...emptyTcpCounters(), accepted: 5, active: 1, closed: { done: 4 }, bytesFromClient: 1536, bytesFromServer: 3 * 1024 * 1024 } },
      workers: { pids: [43, 44], restarts: 0 },
      capacity: { configured: 100_000, perWorker: 7974, limitedBy: 'descriptors', fileLimit: 20_000, descriptorsPerFlow: 2, sharedPipes: 1994, neededFileLimit: 250_064 },
    },
  ],
  rules: {
    managed: true,
    backend: 'nft',
    inPlace: true,
    pieces: [
      { kind: 'table', name: 'table inet tproxy_rules', state: 'in place' },
      { kind: 'rule', name: 'prerouting: tproxy: intercept tcp ipv4', state: 'in place', counter: { packets: 12, bytes: 2048 } },
    ],
    unexpected: [],
  },
  flows: [{ listener: 'main', id: 3, client: { family: 4, address: '198.51.100.10', port: 40_000 }, originalDestination: { family: 4, address: '203.0.113.20', port: 81 }, bytesFromClient: 1024, bytesFromServer: 0, ageMs: 2400, connected: true, pid: 43 }],
};

describe('tproxy status text', () => {
  it('lists flows and bytes per route and outbound, and sniff outcomes, when the listener has routes', () => {
    const c = { flows: 2, bytesFromClient: 2048, bytesFromServer: 0 };
    const withRoutes: DaemonStatus = {
      ...status,
      listeners: status.listeners.map((l) => ({ ...l, counters: { tcp: { ...l.counters.tcp, routes: { lan: c, default: { ...c, flows: 1 } }, outbounds: { direct: c, corp: { ...c, flows: 1 } }, sniffs: { tls: 2, timeout: 1 } } } })),
    };
    const text = renderStatus(withRoutes, 0);
    assert.match(text, /\n {4}routes: lan 2 flows \(2\.0 KiB up, 0 B down\), default 1 flow \(2\.0 KiB up, 0 B down\)\n/);
    assert.match(text, /\n {4}outbounds: direct 2 flows \(2\.0 KiB up, 0 B down\), corp 1 flow/);
    assert.match(text, /\n {4}sniffed: tls 2, timeout 1\n/);
    assert.doesNotMatch(renderStatus(status, 0), /routes:/, 'no routes line without routes');
  });

  it('adds the pipe waits (splice engine) to the closed line once there were some', () => {
    const waited: DaemonStatus = { ...status, listeners: status.listeners.map((l) => ({ ...l, counters: { tcp: { ...l.counters.tcp, pipeWaits: 12, pipeWaiting: 3 } } })) };
    assert.match(renderStatus(waited, 0), /\n {4}closed: done 4; refused: none; connect errors: none; accept pauses: 0; pipe waits: 12 \(3 now\)\n/);
    assert.doesNotMatch(renderStatus(status, 0), /pipe waits/);
  });

  it('formats bytes and durations', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatDuration(3725), '1h 2m 5s');
    assert.equal(formatDuration(0.4), '0s');
    assert.equal(formatDuration(86_400 + 5), '1d 0h 0m 5s');
  });

  it('shows the daemon, its listeners, rules with counters, counters and busiest flows', () => {
    assert.equal(
      renderStatus(status, 10),
      [
        'tproxy 0.1.0, pid 42, running, up 1h 2m 5s (since 2026-11-30T04:00:00.000Z; engine splice, node v20.20.2)',
        'rules: in place (backend nft, table inet tproxy_rules)',
        '  prerouting: tproxy: intercept tcp ipv4  12 packets, 2.0 KiB',
        'listener main: tcp 0.0.0.0:8000, tcp [::]:8000',
        '  tcp: 1 active, 5 accepted; 1.5 KiB from clients, 3.0 MiB from servers',
        '    closed: done 4; refused: none; connect errors: none; accept pauses: 0',
        '    workers: 2 (pids 43, 44), 0 restarts',
        '    cap: at most 7974 connections per worker, not the configured 100000: the descriptor limit 20000 (RLIMIT_NOFILE) holds (20000 - 64 reserved and what is open at start) at 2 per flow plus 2 for each of 1994 pipes the flows with bytes in flight share; raise it (LimitNOFILE= in the systemd unit, ulimit -n) to 250064 for the configured cap',
        'busiest tcp flows (top 10 by bytes):',
        '  198.51.100.10:40000 -> 203.0.113.20:81  1.0 KiB up, 0 B down, 2s (worker 43)',
        '',
      ].join('\n'),
    );
  });

  it('lists the mmproxy listeners with their backends and counts, and connections of replaced ones still finishing', () => {
    const counters = { headersProxy: 12, headersLocal: 3, rejected: { 'source-not-allowed': 2, 'bad-signature': 1 }, connectErrors: {}, closed: { done: 10 }, active: 2, bytesFromClient: 4096, bytesFromBackend: 1_048_576, pipeResizesRefused: 0, pipeWaits: 0, pipeWaiting: 0 };
    const text = renderStatus({ ...status, mmproxy: { listeners: [{ name: 'web', listen: [{ address: '0.0.0.0', port: 8443 }, { address: '::', port: 8443 }], backend4: { address: '127.0.0.1', port: 80 }, counters }], drainingConnections: 1 } }, 0);
    assert.match(
      text,
      new RegExp(
        [
          'mmproxy web: tcp 0\\.0\\.0\\.0:8443, \\[::\\]:8443 \\(PROXY v1/v2\\) -> IPv4 127\\.0\\.0\\.1:80, IPv6 the header\'s destination',
          '  headers: 12 proxy, 3 local; refused: source-not-allowed 2, bad-signature 1; connect errors: none',
          '  flows: 2 active; closed: done 10; 4\\.0 KiB from clients, 1\\.0 MiB from backends \\(flows ended\\)',
          'mmproxy: 1 connection of replaced listeners still finishing',
        ].join('\n'),
      ),
    );
    assert.doesNotMatch(renderStatus(status, 0), /mmproxy/);
  });

  it('adds an mmproxy listener\'s pipe waits (splice engine) to its flows line once there were some', () => {
    const counters = { headersProxy: 12, headersLocal: 0, rejected: {}, connectErrors: {}, closed: { done: 10 }, active: 2, bytesFromClient: 4096, bytesFromBackend: 4096, pipeResizesRefused: 0, pipeWaits: 9, pipeWaiting: 2 };
    const view = (c: typeof counters): DaemonStatus => ({ ...status, mmproxy: { listeners: [{ name: 'web', listen: [{ address: '0.0.0.0', port: 8443 }], counters: c }], drainingConnections: 0 } });
    assert.match(renderStatus(view(counters), 0), /\n {2}flows: 2 active; closed: done 10; 4\.0 KiB from clients, 4\.0 KiB from backends \(flows ended\); pipe waits: 9 \(2 now\)\n/);
    assert.doesNotMatch(renderStatus(view({ ...counters, pipeWaits: 0, pipeWaiting: 0 }), 0), /pipe waits/);
  });

  it('shows a udp mmproxy listener as udp, with its sessions and bytes relayed so far', () => {
    const counters = { headersProxy: 7, headersLocal: 1, rejected: { 'not-dgram': 1 }, connectErrors: {}, closed: { idle: 2 }, active: 3, bytesFromClient: 2048, bytesFromBackend: 4096, pipeResizesRefused: 0, pipeWaits: 0, pipeWaiting: 0 };
    const text = renderStatus({ ...status, mmproxy: { listeners: [{ name: 'dns', protocol: 'udp', listen: [{ address: '10.0.0.5', port: 5353 }], backend4: { address: '127.0.0.1', port: 53 }, counters }], drainingConnections: 0 } }, 0);
    assert.match(
      text,
      new RegExp(
        [
          'mmproxy dns: udp 10\\.0\\.0\\.5:5353 \\(PROXY v2 per datagram\\) -> IPv4 127\\.0\\.0\\.1:53, IPv6 the header\'s destination',
          '  headers: 7 proxy, 1 local; refused: not-dgram 1; connect errors: none',
          '  sessions: 3 open; closed: idle 2; 2\\.0 KiB from clients, 4\\.0 KiB from backends$',
        ].join('\n'),
        'm',
      ),
    );
  });

  it('says when rules are not managed here or could not be read', () => {
    assert.match(renderStatus({ ...status, rules: { managed: false } }, 0), /^rules: not managed by this daemon \(--no-rules\)$/m);
    assert.match(renderStatus({ ...status, rules: { managed: true, backend: 'nft', error: 'nft: exit 1' } }, 0), /^rules: could not be read \(backend nft\): nft: exit 1$/m);
    assert.doesNotMatch(renderStatus(status, 0), /busiest/);
  });

  it('names the listener of each busiest flow when there are several', () => {
    const two: DaemonStatus = { ...status, listeners: [...status.listeners, { ...status.listeners[0]!, name: 'dns', workers: { pids: [], restarts: 0 } }] };
    const text = renderStatus(two, 1);
    assert.match(text, /^listener dns: tcp 0\.0\.0\.0:8000, tcp \[::\]:8000$/m);
    assert.match(text, /^ {4}workers: none \(TCP in the main process\), 0 restarts$/m);
    assert.match(text, /, 2s \(listener main, worker 43\)$/m);
  });
});

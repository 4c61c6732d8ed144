/**
 * The daemon's metrics: which families exist (name, type, help, labels) and how one snapshot of
 * the counters maps onto them. Pure: the snapshot is read at scrape time by the caller, the
 * Prometheus text is written by prom-client (prometheus.ts).
 */
import type { MmproxyCounters } from '../dataplane/mmproxy/counters.js';
import type { TcpCapacity } from '../dataplane/tcp/capacity.js';
import type { ProxyCounters } from '../dataplane/proxy.js';
import type { DescriptorBudgetSnapshot } from '../sys/descriptor-budget.js';
import { UDP_ERROR_REASONS, type UdpRoutedCounters } from '../dataplane/udp/counters.js';
import type { RoutedCounters } from '../dataplane/tcp/counters.js';

export type MetricType = 'counter' | 'gauge';

export interface MetricFamily {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labelNames: readonly string[];
}

export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface FamilyValues {
  readonly family: MetricFamily;
  readonly samples: readonly Sample[];
}

export interface RuleCounter {
  /** The rule as `tproxy rules status` names it, e.g. `prerouting: tproxy: intercept tcp ipv4`. */
  readonly rule: string;
  readonly packets: number;
  readonly bytes: number;
}

/** Our kernel rules as read at scrape time. */
export type RulesSnapshot =
  | { readonly managed: false }
  | { readonly managed: true; readonly backend: string; readonly inPlace: boolean; readonly counters: readonly RuleCounter[] }
  /** Reading them failed (the tool's error); the failure is counted, not fatal to the scrape. */
  | { readonly managed: true; readonly backend: string; readonly error: string };

/** One listener (one Proxy) of the daemon. */
export interface ListenerSnapshot {
  readonly name: string;
  readonly counters: ProxyCounters;
  readonly workers: { readonly running: number; readonly restarts: number };
  readonly capacity: TcpCapacity;
}

export interface MetricsSnapshot {
  readonly build: { readonly version: string; readonly node: string; readonly engine: string };
  readonly startTimeSeconds: number;
  readonly listeners: readonly ListenerSnapshot[];
  readonly rules: RulesSnapshot;
  /** Failed reads of the kernel rules since start. */
  readonly rulesReadFailures: number;
  /** `error` events since start, by code. */
  readonly errors: Readonly<Record<string, number>>;
  /** The daemon process's descriptor budget (TCP worker processes have their own). */
  readonly descriptors?: DescriptorBudgetSnapshot;
  /** The mmproxy listeners (behind a load balancer), by name; absent or empty: none configured. */
  readonly mmproxy?: Readonly<Record<string, MmproxyCounters>>;
}

const family = (name: string, type: MetricType, help: string, labelNames: readonly string[] = []): MetricFamily => ({ name, type, help, labelNames });

/** Every family, in exposition order. Names follow Prometheus conventions (units, _total). */
export const FAMILIES = {
  buildInfo: family('tproxy_build_info', 'gauge', 'Always 1; the labels say what is running.', ['version', 'node', 'engine']),
  startTime: family('tproxy_start_time_seconds', 'gauge', 'When the daemon started, seconds since the epoch.'),
  tcpActive: family('tproxy_tcp_connections_active', 'gauge', 'TCP flows being relayed now.', ['listener']),
  tcpAccepted: family('tproxy_tcp_connections_total', 'counter', 'TCP connections accepted for relaying.', ['listener']),
  tcpClosed: family('tproxy_tcp_connections_closed_total', 'counter', 'TCP flows ended, by how they ended (done: cleanly both ways).', ['listener', 'reason']),
  tcpRefused: family('tproxy_tcp_refused_total', 'counter', 'TCP connections reset before any upstream work, by reason.', ['listener', 'reason']),
  tcpConnectErrors: family('tproxy_tcp_connect_errors_total', 'counter', 'Upstream connects that failed, by errno name (or connect-timeout).', ['listener', 'errno']),
  tcpBytes: family('tproxy_tcp_bytes_total', 'counter', 'TCP payload bytes relayed, by direction.', ['listener', 'direction']),
  tcpAcceptPauses: family('tproxy_tcp_accept_pauses_total', 'counter', 'Times accepting paused at the connection cap or the descriptor limit.', ['listener']),
  tcpPortFallbacks: family('tproxy_tcp_client_port_fallbacks_total', 'counter', 'Transparent upstreams that could not reuse the client port and took another.', ['listener']),
  tcpPipeWaits: family('tproxy_tcp_pipe_waits_total', 'counter', 'Splice engine: directions of TCP flows that waited in line for a pipe (every pair of the shared pipes was held by flows with bytes in flight).', ['listener']),
  tcpPipeWaiting: family('tproxy_tcp_pipe_waiting', 'gauge', 'Splice engine: directions of TCP flows waiting in line for a pipe now.', ['listener']),
  tcpPipeResizesRefused: family('tproxy_tcp_pipe_resizes_refused_total', 'counter', 'Splice engine: pipe sizes the kernel refused (F_SETPIPE_SZ, EPERM: past fs/pipe-user-pages-soft without CAP_SYS_RESOURCE); those pipes keep the kernel\'s size.', ['listener']),
  // Routes and outbounds: labelled by their names in the configuration (bounded by it), never by
  // a destination or a sniffed name (unbounded).
  tcpRouteFlows: family('tproxy_tcp_route_flows_total', 'counter', 'TCP flows by the route they took (default: none matched).', ['listener', 'route']),
  tcpRouteBytes: family('tproxy_tcp_route_bytes_total', 'counter', 'TCP payload bytes by route and direction.', ['listener', 'route', 'direction']),
  tcpOutboundFlows: family('tproxy_tcp_outbound_flows_total', 'counter', 'TCP flows by the outbound they left through (reject: reset at once).', ['listener', 'outbound']),
  tcpOutboundBytes: family('tproxy_tcp_outbound_bytes_total', 'counter', 'TCP payload bytes by outbound and direction.', ['listener', 'outbound', 'direction']),
  tcpSniffs: family('tproxy_tcp_sniffs_total', 'counter', 'TCP flows whose name was sniffed, by outcome (tls, http, none, timeout, closed).', ['listener', 'outcome']),
  workers: family('tproxy_tcp_workers', 'gauge', 'TCP worker processes running.', ['listener']),
  tcpMaxConnections: family('tproxy_tcp_max_connections', 'gauge', 'TCP flows each worker accepts at most (the cap in force); limit="descriptors" when the file limit lowered it below the configured maxConnections, else limit="configured".', ['listener', 'limit']),
  tcpMaxConnectionsConfigured: family('tproxy_tcp_max_connections_configured', 'gauge', 'TCP flows per worker as configured (maxConnections), before the file limit.', ['listener']),
  workerRestarts: family('tproxy_tcp_worker_restarts_total', 'counter', 'TCP worker processes started to replace one that died.', ['listener']),
  udpActive: family('tproxy_udp_sessions_active', 'gauge', 'UDP sessions open now.', ['listener']),
  udpCreated: family('tproxy_udp_sessions_total', 'counter', 'UDP sessions opened.', ['listener']),
  udpClosed: family('tproxy_udp_sessions_closed_total', 'counter', 'UDP sessions closed, for any reason.', ['listener']),
  udpEvicted: family('tproxy_udp_sessions_evicted_total', 'counter', 'UDP sessions closed to make room (least recently used), by reason: session-limit (udp.maxSessions) or descriptor-limit (the process descriptor budget).', ['listener', 'reason']),
  udpExpired: family('tproxy_udp_sessions_expired_total', 'counter', 'UDP sessions closed by the idle timeout.', ['listener']),
  udpClosedByOperator: family('tproxy_udp_sessions_closed_by_operator_total', 'counter', 'UDP sessions an operator ended (the dashboard).', ['listener']),
  udpDatagrams: family('tproxy_udp_datagrams_total', 'counter', 'UDP datagrams relayed, by direction.', ['listener', 'direction']),
  udpBytes: family('tproxy_udp_bytes_total', 'counter', 'UDP payload bytes relayed, by direction.', ['listener', 'direction']),
  udpErrors: family('tproxy_udp_errors_total', 'counter', 'UDP datagrams dropped or sessions ended early, by reason.', ['listener', 'reason']),
  udpPeers: family('tproxy_udp_reply_sockets_total', 'counter', 'UDP reply sockets opened (one per session, or per remote with endpoint-independent mapping).', ['listener']),
  udpFallbacks: family('tproxy_udp_reply_fallbacks_total', 'counter', 'UDP reply paths sent through the raw socket because a local service held the port.', ['listener']),
  udpRouteSessions: family('tproxy_udp_route_sessions_total', 'counter', 'UDP sessions by the route of their first datagram (default: none matched).', ['listener', 'route']),
  udpRouteBytes: family('tproxy_udp_route_bytes_total', 'counter', 'UDP payload bytes by route and direction.', ['listener', 'route', 'direction']),
  udpOutboundSessions: family('tproxy_udp_outbound_sessions_total', 'counter', 'UDP sessions by the outbound they leave through.', ['listener', 'outbound']),
  udpOutboundBytes: family('tproxy_udp_outbound_bytes_total', 'counter', 'UDP payload bytes by outbound and direction.', ['listener', 'outbound', 'direction']),
  udpRejected: family('tproxy_udp_rejected_datagrams_total', 'counter', 'UDP datagrams dropped because their route leads to a reject outbound, by route.', ['listener', 'route']),
  udpOutboundFailed: family('tproxy_udp_outbound_failed_sessions_total', 'counter', 'UDP sessions ended because their outbound failed (a SOCKS5 association refused, broken or closed; the reason is in tproxy_udp_errors_total), by outbound.', ['listener', 'outbound']),
  udpSniffs: family('tproxy_udp_quic_sniffs_total', 'counter', 'UDP flows whose first datagram was read for a QUIC server name, by outcome (quic: a name, none: no name).', ['listener', 'outcome']),
  udpHandovers: family('tproxy_udp_race_handovers_total', 'counter', 'Datagrams found on a new reply socket that belonged to another client, handed to their own session.', ['listener']),
  mmproxyHeaders: family('tproxy_mmproxy_headers_total', 'counter', 'PROXY headers accepted by mmproxy listeners, by command (proxy: relayed from the client\'s address; local: a health check).', ['listener', 'command']),
  mmproxyRejected: family('tproxy_mmproxy_rejected_total', 'counter', 'What mmproxy listeners refused before any relay, by reason: TCP entries count connections reset (source-not-allowed, header-timeout, closed-before-header, the header decoder\'s reason, backend-family, descriptor-limit); UDP entries count datagrams dropped (source-not-allowed, the decoder\'s reason, not-dgram, session-limit, descriptor-budget).', ['listener', 'reason']),
  mmproxyActive: family('tproxy_mmproxy_connections_active', 'gauge', 'Flows mmproxy listeners relay now.', ['listener']),
  mmproxyClosed: family('tproxy_mmproxy_connections_closed_total', 'counter', 'Flows of mmproxy listeners ended, by how they ended (done: cleanly both ways).', ['listener', 'reason']),
  mmproxyConnectErrors: family('tproxy_mmproxy_connect_errors_total', 'counter', 'Backend connects of mmproxy listeners that failed, by errno name (or connect-timeout).', ['listener', 'errno']),
  mmproxyPipeResizesRefused: family('tproxy_mmproxy_pipe_resizes_refused_total', 'counter', 'Splice engine of mmproxy listeners: pipe sizes the kernel refused (F_SETPIPE_SZ, EPERM: past fs/pipe-user-pages-soft without CAP_SYS_RESOURCE).', ['listener']),
  mmproxyPipeWaits: family('tproxy_mmproxy_pipe_waits_total', 'counter', 'Splice engine of mmproxy listeners: directions of flows that waited in line for a pipe (every pair of the engine thread\'s shared pipes was held by flows with bytes in flight).', ['listener']),
  mmproxyPipeWaiting: family('tproxy_mmproxy_pipe_waiting', 'gauge', 'Splice engine of mmproxy listeners: directions of flows waiting in line for a pipe now.', ['listener']),
  mmproxyBytes: family('tproxy_mmproxy_bytes_total', 'counter', 'Bytes mmproxy listeners relayed (flows ended), by direction.', ['listener', 'direction']),
  rulesInPlace: family('tproxy_rules_in_place', 'gauge', '1 when every kernel rule of ours is live as planned, else 0 (absent with --no-rules).', ['backend']),
  rulesReadFailures: family('tproxy_rules_read_failures_total', 'counter', 'Scrapes whose read of the kernel rules failed.'),
  rulePackets: family('tproxy_rule_packets_total', 'counter', 'Packets counted by our kernel rules (tproxy rules count only packets that reached a transparent socket).', ['rule']),
  ruleBytes: family('tproxy_rule_bytes_total', 'counter', 'Bytes counted by our kernel rules.', ['rule']),
  errors: family('tproxy_errors_total', 'counter', 'Errors the data plane reported, by code.', ['code']),
  descriptorsCapacity: family('tproxy_descriptors_capacity', 'gauge', 'Descriptors the daemon process hands out: the soft RLIMIT_NOFILE less those open at start and a slack for the runtime.'),
  descriptorsInUse: family('tproxy_descriptors_in_use', 'gauge', 'Descriptors of the daemon process taken from its budget now, by consumer (TCP worker processes have their own).', ['consumer']),
  descriptorsRefused: family('tproxy_descriptors_refused_total', 'counter', 'Requests for descriptors the budget refused, by consumer.', ['consumer']),
} as const;

export const FAMILY_LIST: readonly MetricFamily[] = Object.values(FAMILIES);

const one = (value: number, labels: Record<string, string> = {}): Sample => ({ labels, value });
const byLabel = (label: string, record: Readonly<Record<string, number>>): Sample[] =>
  Object.entries(record)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => ({ labels: { [label]: key }, value }));
const directions = (fromClient: number, fromServer: number): Sample[] => [one(fromClient, { direction: 'from_client' }), one(fromServer, { direction: 'from_server' })];

const routedFlows = (label: string, record: Readonly<Record<string, RoutedCounters>> | undefined): Sample[] =>
  Object.entries(record ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, c]) => one(c.flows, { [label]: key }));
const routedBytes = (label: string, record: Readonly<Record<string, RoutedCounters>> | undefined): Sample[] =>
  Object.entries(record ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([key, c]) => directions(c.bytesFromClient, c.bytesFromServer).map((s) => ({ labels: { [label]: key, ...s.labels }, value: s.value })));

const udpRouted = (label: string, record: Readonly<Record<string, UdpRoutedCounters>> | undefined, key: 'sessions' | 'rejected' | 'failed'): Sample[] =>
  Object.entries(record ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, c]) => one(c[key], { [label]: name }));
const udpRoutedBytes = (label: string, record: Readonly<Record<string, UdpRoutedCounters>> | undefined): Sample[] =>
  Object.entries(record ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([name, c]) => directions(c.bytesFromClients, c.bytesFromServers).map((s) => ({ labels: { [label]: name, ...s.labels }, value: s.value })));

/** The families of one listener's counters, each sample labelled with the listener's name. */
function listenerValues(l: ListenerSnapshot): FamilyValues[] {
  const F = FAMILIES;
  const tcp = l.counters.tcp;
  const udp = l.counters.udp;
  const out: FamilyValues[] = [
    { family: F.tcpActive, samples: [one(tcp.active)] },
    { family: F.tcpAccepted, samples: [one(tcp.accepted)] },
    { family: F.tcpClosed, samples: byLabel('reason', tcp.closed) },
    { family: F.tcpRefused, samples: byLabel('reason', tcp.refused) },
    { family: F.tcpConnectErrors, samples: byLabel('errno', tcp.connectErrors) },
    { family: F.tcpBytes, samples: directions(tcp.bytesFromClient, tcp.bytesFromServer) },
    { family: F.tcpAcceptPauses, samples: [one(tcp.acceptPauses)] },
    { family: F.tcpPortFallbacks, samples: [one(tcp.clientPortFallbacks)] },
    { family: F.tcpPipeWaits, samples: [one(tcp.pipeWaits)] },
    { family: F.tcpPipeWaiting, samples: [one(tcp.pipeWaiting)] },
    { family: F.tcpPipeResizesRefused, samples: [one(tcp.pipeResizesRefused)] },
    { family: F.tcpRouteFlows, samples: routedFlows('route', tcp.routes) },
    { family: F.tcpRouteBytes, samples: routedBytes('route', tcp.routes) },
    { family: F.tcpOutboundFlows, samples: routedFlows('outbound', tcp.outbounds) },
    { family: F.tcpOutboundBytes, samples: routedBytes('outbound', tcp.outbounds) },
    { family: F.tcpSniffs, samples: byLabel('outcome', tcp.sniffs) },
    { family: F.workers, samples: [one(l.workers.running)] },
    { family: F.workerRestarts, samples: [one(l.workers.restarts)] },
    { family: F.tcpMaxConnections, samples: [one(l.capacity.perWorker, { limit: l.capacity.limitedBy })] },
    { family: F.tcpMaxConnectionsConfigured, samples: [one(l.capacity.configured)] },
  ];
  if (udp) {
    out.push(
      { family: F.udpActive, samples: [one(udp.sessionsActive)] },
      { family: F.udpCreated, samples: [one(udp.sessionsCreated)] },
      { family: F.udpClosed, samples: [one(udp.sessionsClosed)] },
      { family: F.udpEvicted, samples: [one(udp.sessionsEvicted - udp.sessionsEvictedForDescriptors, { reason: 'session-limit' }), one(udp.sessionsEvictedForDescriptors, { reason: 'descriptor-limit' })] },
      { family: F.udpExpired, samples: [one(udp.sessionsExpired)] },
      { family: F.udpClosedByOperator, samples: [one(udp.sessionsClosedByOperator)] },
      { family: F.udpDatagrams, samples: directions(udp.datagramsFromClients, udp.datagramsFromServers) },
      { family: F.udpBytes, samples: directions(udp.bytesFromClients, udp.bytesFromServers) },
      { family: F.udpErrors, samples: UDP_ERROR_REASONS.map((reason) => one(udp.errors[reason], { reason })) },
      { family: F.udpPeers, samples: [one(udp.peersCreated)] },
      { family: F.udpFallbacks, samples: [one(udp.replyFallbacks)] },
      { family: F.udpHandovers, samples: [one(udp.raceHandovers)] },
      { family: F.udpRouteSessions, samples: udpRouted('route', udp.routes, 'sessions') },
      { family: F.udpRouteBytes, samples: udpRoutedBytes('route', udp.routes) },
      { family: F.udpOutboundSessions, samples: udpRouted('outbound', udp.outbounds, 'sessions') },
      { family: F.udpOutboundBytes, samples: udpRoutedBytes('outbound', udp.outbounds) },
      { family: F.udpRejected, samples: udpRouted('route', udp.routes, 'rejected') },
      { family: F.udpOutboundFailed, samples: udpRouted('outbound', udp.outbounds, 'failed') },
      { family: F.udpSniffs, samples: [one(udp.quicNames, { outcome: 'quic' }), one(udp.quicSniffs - udp.quicNames, { outcome: 'none' })] },
    );
  }
  return out.map(({ family, samples }) => ({ family, samples: samples.map((s) => ({ labels: { listener: l.name, ...s.labels }, value: s.value })) }));
}

/**
 * The values of every family for one snapshot. Listener families carry a `listener` label; UDP
 * families are absent when no listener relays UDP; rule families when rules are not managed here.
 */
export function metricValues(s: MetricsSnapshot): FamilyValues[] {
  const F = FAMILIES;
  const out: FamilyValues[] = [
    { family: F.buildInfo, samples: [one(1, { version: s.build.version, node: s.build.node, engine: s.build.engine })] },
    { family: F.startTime, samples: [one(s.startTimeSeconds)] },
  ];
  // One entry per family, the samples of every listener in it (a family must appear once).
  const byFamily = new Map<MetricFamily, Sample[]>();
  for (const l of s.listeners) for (const { family, samples } of listenerValues(l)) byFamily.set(family, [...(byFamily.get(family) ?? []), ...samples]);
  out.push(...FAMILY_LIST.filter((f) => byFamily.has(f)).map((family) => ({ family, samples: byFamily.get(family) ?? [] })));
  const rules = s.rules;
  if (rules.managed) {
    out.push({ family: F.rulesReadFailures, samples: [one(s.rulesReadFailures)] });
    if (!('error' in rules)) {
      out.push(
        { family: F.rulesInPlace, samples: [one(rules.inPlace ? 1 : 0, { backend: rules.backend })] },
        { family: F.rulePackets, samples: rules.counters.map((c) => one(c.packets, { rule: c.rule })) },
        { family: F.ruleBytes, samples: rules.counters.map((c) => one(c.bytes, { rule: c.rule })) },
      );
    }
  }
  const mmproxy = Object.entries(s.mmproxy ?? {});
  if (mmproxy.length > 0) {
    const each = (f: (c: MmproxyCounters) => Sample[]): Sample[] => mmproxy.flatMap(([listener, c]) => f(c).map((x) => ({ labels: { listener, ...x.labels }, value: x.value })));
    out.push(
      { family: F.mmproxyHeaders, samples: each((c) => [one(c.headersProxy, { command: 'proxy' }), one(c.headersLocal, { command: 'local' })]) },
      { family: F.mmproxyRejected, samples: each((c) => byLabel('reason', c.rejected)) },
      { family: F.mmproxyActive, samples: each((c) => [one(c.active)]) },
      { family: F.mmproxyClosed, samples: each((c) => byLabel('reason', c.closed)) },
      { family: F.mmproxyConnectErrors, samples: each((c) => byLabel('errno', c.connectErrors)) },
      { family: F.mmproxyBytes, samples: each((c) => [one(c.bytesFromClient, { direction: 'from_client' }), one(c.bytesFromBackend, { direction: 'from_server' })]) },
      { family: F.mmproxyPipeResizesRefused, samples: each((c) => [one(c.pipeResizesRefused)]) },
      { family: F.mmproxyPipeWaits, samples: each((c) => [one(c.pipeWaits)]) },
      { family: F.mmproxyPipeWaiting, samples: each((c) => [one(c.pipeWaiting)]) },
    );
  }
  out.push({ family: F.errors, samples: byLabel('code', s.errors) });
  const d = s.descriptors;
  if (d) {
    const consumers = Object.entries(d.byConsumer);
    out.push(
      { family: F.descriptorsCapacity, samples: [one(d.capacity)] },
      { family: F.descriptorsInUse, samples: consumers.map(([consumer, c]) => one(c.inUse, { consumer })) },
      { family: F.descriptorsRefused, samples: consumers.map(([consumer, c]) => one(c.refused, { consumer })) },
    );
  }
  return out;
}

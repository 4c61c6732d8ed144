/** `tproxy status` for people: a daemon's status as text. Pure. */
import { describeCapacity } from '../dataplane/tcp/capacity.js';
import { formatEndpoint } from '../core/net/sockaddr.js';
import type { DaemonStatus, ListenerStatus, MmproxyStatusView, RulesView } from '../daemon/admin-protocol.js';
import { DEFAULT_ROUTE } from '../core/route/table.js';
import type { RoutedCounters } from '../dataplane/tcp/counters.js';

/** 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** 3725 -> "1h 2m 5s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const parts = [[Math.floor(s / 86_400), 'd'], [Math.floor((s % 86_400) / 3600), 'h'], [Math.floor((s % 3600) / 60), 'm'], [s % 60, 's']] as const;
  const first = parts.findIndex(([n]) => n > 0);
  const shown = parts.slice(first < 0 ? parts.length - 1 : first);
  return shown.map(([n, u]) => `${n}${u}`).join(' ');
}

/** "done 3, ECONNRESET 1" (zero entries left out), or "none". */
function tally(record: Readonly<Record<string, number>>): string {
  const entries = Object.entries(record).filter(([, n]) => n > 0);
  return entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ${n}`).join(', ');
}

function rulesLines(rules: RulesView): string[] {
  if (!rules.managed) return ['rules: not managed by this daemon (--no-rules)'];
  if ('error' in rules) return [`rules: could not be read (backend ${rules.backend}): ${rules.error}`];
  const table = rules.pieces.find((p) => p.kind === 'table');
  const missing = rules.pieces.filter((p) => p.state !== 'in place');
  const head = rules.inPlace
    ? `rules: in place (backend ${rules.backend}${table ? `, ${table.name}` : ''})`
    : `rules: NOT in place (backend ${rules.backend}): ${missing.map((p) => `${p.state} ${p.name}`).join('; ')}${rules.unexpected.length ? `; unexpected: ${rules.unexpected.join('; ')}` : ''}`;
  const counted = rules.pieces.filter((p) => p.counter);
  const width = Math.max(0, ...counted.map((p) => p.name.length));
  return [head, ...counted.map((p) => `  ${p.name.padEnd(width)}  ${p.counter?.packets ?? 0} packets, ${formatBytes(p.counter?.bytes ?? 0)}`)];
}

/** "lan 12 flows (1.2 KiB up, 3.0 MiB down), default 3 flows (...)". */
function routed(record: Readonly<Record<string, RoutedCounters>>): string {
  return Object.entries(record)
    .map(([k, c]) => `${k} ${c.flows} flow${c.flows === 1 ? '' : 's'} (${formatBytes(c.bytesFromClient)} up, ${formatBytes(c.bytesFromServer)} down)`)
    .join(', ');
}

function listenerLines(l: ListenerStatus): string[] {
  const tcp = l.counters.tcp;
  const udp = l.counters.udp;
  const lines = [
    `listener ${l.name}: ${l.sockets.length === 0 ? 'no sockets yet' : l.sockets.map((s) => `${s.transport} ${formatEndpoint(s)}`).join(', ')}`,
    `  tcp: ${tcp.active} active, ${tcp.accepted} accepted; ${formatBytes(tcp.bytesFromClient)} from clients, ${formatBytes(tcp.bytesFromServer)} from servers`,
    // Pipe waits only once there were some (the splice engine's shared pipes at their budget; 0 elsewhere).
    `    closed: ${tally(tcp.closed)}; refused: ${tally(tcp.refused)}; connect errors: ${tally(tcp.connectErrors)}; accept pauses: ${tcp.acceptPauses}${tcp.pipeWaits > 0 ? `; pipe waits: ${tcp.pipeWaits} (${tcp.pipeWaiting} now)` : ''}`,
    // Only with routes: a listener without them has one outbound, and its flows are the lines above.
    ...(Object.keys(tcp.routes ?? {}).some((r) => r !== DEFAULT_ROUTE) ? [`    routes: ${routed(tcp.routes)}`, `    outbounds: ${routed(tcp.outbounds)}`, `    sniffed: ${tally(tcp.sniffs ?? {})}`] : []),
    `    workers: ${l.workers.pids.length === 0 ? 'none (TCP in the main process)' : `${l.workers.pids.length} (pids ${l.workers.pids.join(', ')})`}, ${l.workers.restarts} restarts`,
    `    cap: ${describeCapacity(l.capacity)}`,
  ];
  if (udp) {
    lines.push(
      `  udp: ${udp.sessionsActive} sessions active, ${udp.sessionsCreated} opened (${udp.sessionsExpired} expired, ${udp.sessionsEvicted} evicted); ${udp.datagramsFromClients} datagrams / ${formatBytes(udp.bytesFromClients)} from clients, ${udp.datagramsFromServers} / ${formatBytes(udp.bytesFromServers)} from servers`,
      `    errors: ${tally(udp.errors)}`,
    );
  }
  return lines;
}

function hostPort(e: { address: string; port: number }): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** The mmproxy listeners: where they listen, their backends, headers, refusals and flows. */
function mmproxyLines(view: MmproxyStatusView): string[] {
  const lines = view.listeners.flatMap((l) => {
    const c = l.counters;
    const backends = [l.backend4 ? `IPv4 ${hostPort(l.backend4)}` : 'IPv4 the header\'s destination', l.backend6 ? `IPv6 ${hostPort(l.backend6)}` : 'IPv6 the header\'s destination'].join(', ');
    const headers = `  headers: ${c.headersProxy} proxy, ${c.headersLocal} local; refused: ${tally(c.rejected)}; connect errors: ${tally(c.connectErrors)}`;
    // UDP counts bytes as they are relayed (a session has no end worth waiting for); TCP when a flow ends.
    return l.protocol === 'udp'
      ? [
          `mmproxy ${l.name}: udp ${l.listen.map(hostPort).join(', ')} (PROXY v2 per datagram) -> ${backends}`,
          headers,
          `  sessions: ${c.active} open; closed: ${tally(c.closed)}; ${formatBytes(c.bytesFromClient)} from clients, ${formatBytes(c.bytesFromBackend)} from backends`,
        ]
      : [
          `mmproxy ${l.name}: tcp ${l.listen.map(hostPort).join(', ')} (PROXY v1/v2) -> ${backends}`,
          headers,
          `  flows: ${c.active} active; closed: ${tally(c.closed)}; ${formatBytes(c.bytesFromClient)} from clients, ${formatBytes(c.bytesFromBackend)} from backends (flows ended)${c.pipeWaits > 0 ? `; pipe waits: ${c.pipeWaits} (${c.pipeWaiting} now)` : ''}`,
        ];
  });
  if (view.drainingConnections > 0) lines.push(`mmproxy: ${view.drainingConnections} connection${view.drainingConnections === 1 ? '' : 's'} of replaced listeners still finishing`);
  return lines;
}

export function renderStatus(s: DaemonStatus, top: number): string {
  const named = s.listeners.length > 1;
  const lines = [
    `tproxy ${s.version}, pid ${s.pid}, ${s.state}, up ${formatDuration(s.uptimeSeconds)} (since ${s.startedAt}; engine ${s.engine}, node ${s.node})`,
    ...rulesLines(s.rules),
    ...(s.listeners.length > 0 ? s.listeners.flatMap(listenerLines) : s.mmproxy && s.mmproxy.listeners.length > 0 ? [] : ['listeners: none yet']),
    ...(s.mmproxy ? mmproxyLines(s.mmproxy) : []),
  ];
  if (top > 0) {
    lines.push(s.flows.length === 0 ? 'busiest tcp flows: none in progress' : `busiest tcp flows (top ${top} by bytes):`);
    for (const f of s.flows) {
      const where = [...(named ? [`listener ${f.listener}`] : []), ...(f.pid !== undefined ? [`worker ${f.pid}`] : [])];
      lines.push(
        `  ${formatEndpoint(f.client)} -> ${formatEndpoint(f.originalDestination)}  ${formatBytes(f.bytesFromClient)} up, ${formatBytes(f.bytesFromServer)} down, ${formatDuration(f.ageMs / 1000)}${f.connected ? '' : ', connecting'}${where.length ? ` (${where.join(', ')})` : ''}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

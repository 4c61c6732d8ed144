/**
 * Log lines of the daemon, to stderr: leveled (error, warn, info, debug), as JSON lines or as
 * human-readable text. Pure: formatting and filtering; the caller writes the lines.
 *
 * JSON shape (one object per line, stable; documented in docs/operations.md):
 *   time   RFC 3339 UTC with milliseconds
 *   level  error | warn | info | debug
 *   type   the event's stable name (`tcp.close`, `rules.applied`, ...): what programs select on
 *   msg    the same sentence the text format prints: for people, not for parsing
 *   ...    the event's fields, at the top level (never one of the four keys above)
 */
import { formatEndpoint } from '../core/net/sockaddr.js';
import { LOG_LEVELS, type LogLevel } from '../core/config/sections/log.js';
import type { DaemonEvent, DaemonOwnEvent } from './events.js';
import type { ProxyEvent } from '../dataplane/events.js';
import { LogThrottle, THROTTLE_WINDOW_MS, throttleKey } from './log-throttle.js';

export type LogFormat = 'json' | 'text';

export { LOG_LEVELS, type LogLevel };

export type LogEvent = DaemonEvent;

/** One line per flow and per refused or dropped packet: debug. */
const DEBUG = new Set(['tcp.accept', 'tcp.route', 'tcp.connected', 'tcp.close', 'tcp.refused', 'udp.session.open', 'udp.session.close', 'udp.drop', 'mmproxy.local', 'mmproxy.close', 'mmproxy.udp.open', 'mmproxy.udp.close']);

export function levelOf(event: LogEvent): LogLevel {
  if (DEBUG.has(event.type)) return 'debug';
  switch (event.type) {
    case 'error':
      return 'error';
    case 'mmproxy.reject':
      // A balancer that sends a bad header is misconfigured (info); a source not allowed is a scan (debug).
      return event.reason === 'source-not-allowed' ? 'debug' : 'info';
    case 'worker.exit':
      return event.restarting ? 'warn' : 'error';
    case 'rules.warning':
    case 'udp.reply.fallback':
    case 'udp.outbound.failed':
    case 'udp.restart':
    case 'udp.loop.reclaimed':
    case 'admin.stale-socket':
    case 'reload.rejected':
      return 'warn';
    default:
      return 'info';
  }
}

export function enabled(event: LogLevel, threshold: LogLevel): boolean {
  return LOG_LEVELS.indexOf(event) <= LOG_LEVELS.indexOf(threshold);
}

const list = (value: unknown): string => (Array.isArray(value) && value.length > 0 ? value.join(', ') : 'none');

const listeners = (value: unknown): string =>
  Array.isArray(value) ? `listeners ${list((value as { name?: unknown; port?: unknown }[]).map((l) => `${String(l.name)} (port ${String(l.port)})`))}, ` : '';

function daemonMessage(e: DaemonOwnEvent): string | undefined {
  switch (e.type) {
    case 'ready':
      return `ready: pid ${String(e.pid)}, ${listeners(e.listeners)}tcp workers ${list(e.tcpWorkers)}, at most ${String(e.maxConnectionsPerWorker)} connections per worker`;
    case 'reload':
      return `reload: reading ${String(e.file)}`;
    case 'reload.applied':
      return `reload applied: listeners added ${list(e.added)}, removed ${list(e.removed)}, changed ${list(e.changed)}, kept ${list(e.kept)}${e.flowEventsSwitched ? ` (per-flow events switched in place in ${list(e.flowEventsSwitched)})` : ''}${e.routingSwitched ? ` (routes swapped in place in ${list(e.routingSwitched)}: flows in progress keep their outbound)` : ''}; rules ${e.rulesChanged ? 'replaced' : 'unchanged'}`;
    case 'reload.rejected':
      return `reload rejected, the running configuration stays: ${String(e.error)}`;
    case 'listener.draining':
      return `listener ${String(e.listener)} stopped accepting; its flows get ${String(e.drainMs)} ms`;
    case 'listener.stopped':
      return `listener ${String(e.listener)} stopped: ${String(e.flowsCompleted)} flows finished, ${String(e.flowsReset)} reset`;
    case 'signal':
      return `${String(e.signal)}: ${String(e.message)}`;
    case 'stopping':
      return e.cause === 'failure' ? `stopping after a failure (${String(e.error)}): listeners close, then the rules are removed` : 'stopping: listeners close, flows in progress get the grace period';
    case 'stopped':
      return `stopped: ${String(e.flowsCompleted)} flows finished, ${String(e.flowsReset)} reset`;
    case 'rules.applied':
      return `rules applied (backend ${String(e.backend)}, ${String(e.table)}, ${String(e.policyRoutes)} policy routes, fail mode ${String(e.failMode)}${e.draining ? `; kept for draining listeners ${list(e.draining)}` : ''})`;
    case 'rules.removed':
      return `rules removed (table ${e.table ? 'removed' : 'was not there'}, ${String(e.rules)} ip rules, ${String(e.routes)} routes)`;
    case 'rules.warning':
      return `rules: ${String(e.message)}`;
    case 'metrics.listening':
      return `metrics at ${String(e.url)}`;
    case 'dashboard.listening':
      return `dashboard at ${String(e.url)} (actions: ${String(e.actions)})`;
    case 'admin.listening':
      return `admin socket ${String(e.path)} (mode ${String(e.mode)}): tproxy status --socket ${String(e.path)}`;
    case 'admin.stale-socket':
      return `admin socket ${String(e.path)}: ${String(e.message)}`;
    case 'drained':
    case 'undrained':
      return `${e.type}: ${String(e.message)}`;
    case 'config.changed':
      return `configuration file ${String(e.file)} changed on disk: reloading as on SIGHUP`;
    case 'privileges':
      return `running as uid ${String(e.uid)} with capabilities ${list(e.capabilities)} (ambient: ${list(e.ambient)})`;
    default:
      return undefined;
  }
}

/** The human sentence for an event (no newline). */
export function messageOf(event: LogEvent): string {
  const daemon = daemonMessage(event as DaemonOwnEvent);
  if (daemon !== undefined) return daemon;
  const e = event as ProxyEvent;
  switch (e.type) {
    case 'listening':
      return `listening ${e.transport} ${formatEndpoint(e.local)} (IP_TRANSPARENT)`;
    case 'tcp.accept':
      return `tcp #${e.id} ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)} intercepted`;
    case 'tcp.refused':
      return `tcp refused ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)}: ${e.reason}`;
    case 'tcp.route':
      return `tcp #${e.id} -> ${formatEndpoint(e.originalDestination)}${e.name === undefined ? '' : ` (name ${e.name})`}: ${e.route === undefined ? 'no route matched' : `route ${e.route}`}, outbound ${e.outbound}`;
    case 'tcp.connected':
      return `tcp #${e.id} upstream connected from ${formatEndpoint(e.upstreamLocal)}`;
    case 'tcp.close':
      return `tcp #${e.id} ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)} closed (${e.reason}): ${e.bytesFromClient} bytes up, ${e.bytesFromServer} bytes down, ${e.durationMs} ms${e.outbound === undefined ? '' : ` via ${e.route ?? 'default'}/${e.outbound}`}`;
    case 'udp.session.open':
      return `udp #${e.id} ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)} session opened (upstream ${formatEndpoint(e.upstreamLocal)}${e.outbound === undefined ? '' : `, via ${e.route ?? 'default'}/${e.outbound}`})`;
    case 'udp.session.close':
      return `udp #${e.id} ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)} session closed (${e.reason}): ${e.datagramsFromClient} datagrams / ${e.bytesFromClient} bytes up, ${e.datagramsFromServer} / ${e.bytesFromServer} down`;
    case 'udp.reply.fallback':
      return `udp #${e.id} replies ${formatEndpoint(e.remote)} -> ${formatEndpoint(e.replyTo)} go through the raw socket (${e.reason}: a local service holds that port)`;
    case 'udp.outbound.failed':
      return `udp #${e.id} ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)} failed on outbound ${e.outbound} (${e.proxy}): ${e.reason} (${e.detail}); the session ended${e.failures > 1 ? ` (${e.failures} sessions failed so since the last line)` : ''}`;
    case 'udp.engine':
      return `udp engine ${e.engine} (asked for ${e.requested}): ${e.why}`;
    case 'udp.restart':
      return `udp relay loop on port ${e.port} started again (restart ${e.restarts})`;
    case 'udp.loop.reclaimed':
      return `udp relay loop on port ${e.port} ended without closing everything (stop timeout or failed shutdown): ${e.sockets} sockets it left open closed, ${e.engineDescriptors === undefined ? '' : `its io_uring ring torn down (${e.engineDescriptors} engine descriptors closed${e.engineErrors?.length ? `; failed: ${e.engineErrors.join(', ')}` : ''}), `}${e.descriptors} descriptor budget entries given back`;
    case 'udp.drop':
      return `udp dropped a datagram${e.source ? ` from ${formatEndpoint(e.source)}` : ''}: ${e.reason}`;
    case 'worker.start':
      return `tcp worker ${e.pid} started${e.restart > 0 ? ` (restart ${e.restart})` : ''}`;
    case 'worker.exit':
      return `tcp worker ${e.pid} exited (code ${e.exitCode ?? '-'}, signal ${e.signal ?? '-'})${e.lostFlows > 0 ? `: ${e.lostFlows} flows lost (reset toward both peers; counted as closed worker-lost)` : ''}${e.restarting ? ', restarting' : ', not restarted'}`;
    case 'mmproxy.listening':
      return `mmproxy ${e.listener} listening tcp ${formatEndpoint(e.local)} (PROXY protocol v1/v2)`;
    case 'mmproxy.reject':
      return `mmproxy ${e.listener} refused ${formatEndpoint(e.balancer)}: ${e.reason}`;
    case 'mmproxy.local':
      return `mmproxy ${e.listener} health check (LOCAL) from ${formatEndpoint(e.balancer)}`;
    case 'mmproxy.close':
      return `mmproxy ${e.listener} ${e.headerSource ? formatEndpoint(e.headerSource) : 'health check'} via ${formatEndpoint(e.balancer)} -> ${formatEndpoint(e.backend)} closed (${e.reason}): ${e.bytesFromClient} bytes up, ${e.bytesFromBackend} bytes down, ${e.durationMs} ms`;
    case 'mmproxy.udp.open':
      return `mmproxy ${e.listener} udp #${e.id} ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)} via ${formatEndpoint(e.balancer)} session opened (backend ${formatEndpoint(e.backend)})`;
    case 'mmproxy.udp.close':
      return `mmproxy ${e.listener} udp #${e.id} ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)} via ${formatEndpoint(e.balancer)} -> ${formatEndpoint(e.backend)} session closed (${e.reason}): ${e.datagramsFromClient} datagrams / ${e.bytesFromClient} bytes up, ${e.datagramsFromBackend} / ${e.bytesFromBackend} down, ${e.durationMs} ms`;
    case 'error':
      return `error ${e.code}: ${e.message}`;
    default: {
      const { type, ...rest } = event as { type: string };
      return `${type}${Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : ''}`;
    }
  }
}

/**
 * One log line, newline included. `leftOut`: events like this one the logger left out before it
 * (log-throttle.ts), said in the line (JSON: a `leftOut` field).
 */
export function formatEvent(event: LogEvent, format: LogFormat, now: Date = new Date(), level: LogLevel = levelOf(event), leftOut = 0): string {
  const msg = leftOut > 0 ? `${messageOf(event)} (and ${leftOut} more like it in the ${THROTTLE_WINDOW_MS / 1000} s before: counted, not logged)` : messageOf(event);
  if (format === 'json') {
    const { type, ...fields } = event as { type: string; [field: string]: unknown };
    for (const reserved of ['time', 'level', 'msg', 'leftOut']) delete fields[reserved];
    return `${JSON.stringify({ time: now.toISOString(), level, type, msg, ...fields, ...(leftOut > 0 ? { leftOut } : {}) })}\n`;
  }
  // With several listeners, each proxy event names its listener (the listener.* events say it already).
  const listener = (event as { listener?: unknown }).listener;
  const prefix = typeof listener === 'string' && event.type !== 'listener.draining' && event.type !== 'listener.stopped' ? `${listener}: ` : '';
  return `${now.toISOString()} ${level.padEnd(5)} ${prefix}${msg}\n`;
}

export interface LoggerOptions {
  readonly format: LogFormat;
  readonly level: LogLevel;
  readonly write: (line: string) => void;
  readonly now?: () => Date;
}

export type Logger = (event: LogEvent) => void;

/** A sink that drops events below the threshold and writes the rest as lines (those an outsider can repeat per connection throttled: log-throttle.ts). */
export function createLogger(options: LoggerOptions): Logger {
  const now = options.now ?? ((): Date => new Date());
  const throttle = new LogThrottle();
  return (event) => {
    const level = levelOf(event);
    if (!enabled(level, options.level)) return;
    const at = now();
    const key = throttleKey(event);
    const leftOut = key === undefined ? 0 : throttle.admit(key, at.getTime());
    if (leftOut === undefined) return;
    options.write(formatEvent(event, options.format, at, level, leftOut));
  };
}

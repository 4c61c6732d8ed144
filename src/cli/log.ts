/** Rendering proxy events as log lines: JSON lines or human-readable text, to stderr. */
import { formatEndpoint } from '../core/net/sockaddr.js';
import type { ProxyEvent } from '../dataplane/events.js';

export type LogFormat = 'json' | 'text';

export function formatEvent(event: ProxyEvent | { readonly type: string; readonly [k: string]: unknown }, format: LogFormat, now: Date = new Date()): string {
  if (format === 'json') return `${JSON.stringify({ time: now.toISOString(), ...event })}\n`;
  // With several listeners, each proxy event names its listener.
  const listener = (event as { listener?: unknown }).listener;
  return typeof listener === 'string' && event.type !== 'listener.draining' && event.type !== 'listener.stopped' ? `${listener}: ${formatText(event)}` : formatText(event);
}

function formatText(event: ProxyEvent | { readonly type: string; readonly [k: string]: unknown }): string {
  const e = event as ProxyEvent;
  switch (e.type) {
    case 'listening':
      return `listening ${e.transport} ${formatEndpoint(e.local)} (IP_TRANSPARENT)\n`;
    case 'tcp.accept':
      return `tcp #${e.id} ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)} intercepted\n`;
    case 'tcp.refused':
      return `tcp refused ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)}: ${e.reason}\n`;
    case 'tcp.connected':
      return `tcp #${e.id} upstream connected from ${formatEndpoint(e.upstreamLocal)}\n`;
    case 'tcp.close':
      return `tcp #${e.id} closed (${e.reason}): ${e.bytesFromClient} bytes up, ${e.bytesFromServer} bytes down, ${e.durationMs} ms\n`;
    case 'udp.session.open':
      return `udp #${e.id} ${formatEndpoint(e.client)} -> ${formatEndpoint(e.originalDestination)} session opened (upstream ${formatEndpoint(e.upstreamLocal)})\n`;
    case 'udp.session.close':
      return `udp #${e.id} session closed (${e.reason}): ${e.datagramsFromClient} datagrams / ${e.bytesFromClient} bytes up, ${e.datagramsFromServer} / ${e.bytesFromServer} down\n`;
    case 'udp.reply.fallback':
      return `udp #${e.id} replies ${formatEndpoint(e.remote)} -> ${formatEndpoint(e.replyTo)} go through the raw socket (${e.reason}: a local service holds that port)\n`;
    case 'udp.drop':
      return `udp dropped a datagram${e.source ? ` from ${formatEndpoint(e.source)}` : ''}: ${e.reason}\n`;
    case 'worker.start':
      return `tcp worker ${e.pid} started${e.restart > 0 ? ` (restart ${e.restart})` : ''}\n`;
    case 'worker.exit':
      return `tcp worker ${e.pid} exited (code ${e.exitCode ?? '-'}, signal ${e.signal ?? '-'})${e.restarting ? ', restarting' : ', not restarted'}\n`;
    case 'error':
      return `error ${e.code}: ${e.message}\n`;
    default: {
      const { type, ...rest } = event as { type: string };
      return `${type}${Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : ''}\n`;
    }
  }
}

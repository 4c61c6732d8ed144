/** The data plane's configuration of one listener, from the validated configuration. Pure. */
import net from 'node:net';
import type { ListenerSettings } from '../core/config/sections/listeners.js';
import type { TproxyConfig } from '../core/config/tproxy-config.js';
import { routingOf } from '../core/config/routing-of.js';
import { defaultTcpWorkers, type ProxyConfig } from '../dataplane/proxy.js';

/**
 * Whether the data plane reports every flow as events (TPROXY listeners and mmproxy entries alike):
 * the debug log shows them, and the dashboard's flow table is fed by them.
 */
export function flowEventsOf(config: TproxyConfig): boolean {
  return config.log.level === 'debug' || config.dashboard.enabled;
}

export function proxyConfigOf(config: TproxyConfig, listener: ListenerSettings, cores: number): ProxyConfig {
  const addresses: { 4?: string; 6?: string } = {};
  for (const a of listener.addresses) addresses[net.isIPv4(a) ? 4 : 6] = a;
  const routing = routingOf(config).find((r) => r.listener === listener.name);
  if (!routing) throw new Error(`listener ${listener.name}: no routing`);
  // The one-outbound shorthand of the listener (routing's default decides each flow).
  const upstream = listener.outbound !== undefined && routing.defaultOutbound.kind === 'transparent' ? 'transparent' : listener.upstream;
  return {
    port: listener.port,
    listenAddresses: addresses,
    families: listener.families,
    transports: [...new Set(listener.intercept.map((s) => s.transport))],
    upstream,
    upstreamMark: listener.upstreamMark,
    ...(listener.upstreamProxy ? { upstreamProxy: listener.upstreamProxy } : {}),
    routing,
    sniffTimeoutMs: listener.sniffTimeoutMs,
    connectTimeoutMs: listener.connectTimeoutMs,
    tcpIdleTimeoutMs: listener.idleTimeoutMs,
    tcpKeepAliveMs: listener.keepAliveMs,
    maxConnections: listener.maxConnections,
    tcpWorkers: config.tcp.workers === 'auto' ? defaultTcpWorkers(cores) : config.tcp.workers,
    tcpEngine: config.tcp.engine,
    udpEngine: config.udp.engine,
    udpIdleTimeoutMs: listener.udp.idleTimeoutMs,
    maxUdpSessions: listener.udp.maxSessions,
    flowEvents: flowEventsOf(config),
    udpMapping: listener.udp.mapping,
    headers: { ...(listener.headers.dscp !== undefined ? { dscp: listener.headers.dscp } : {}), ...(listener.headers.ttl !== undefined ? { ttl: listener.headers.ttl } : {}) },
  };
}

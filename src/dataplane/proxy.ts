/**
 * The proxy: transparent TCP listeners (one per family) and the UDP relay, started and stopped
 * together. Listener failures at start undo what was started.
 */
import type { Family, Transport } from '../core/net/constants.js';
import type { Endpoint } from '../core/net/sockaddr.js';
import { SocketApi } from '../sys/socket.js';
import type { EventSink, UpstreamMode } from './events.js';
import { localAddressCache } from './local-addresses.js';
import { TcpRelay } from './tcp/relay.js';
import type { UdpCounters } from './udp/counters.js';
import type { UdpMapping } from './udp/protocol.js';
import { UdpRelay } from './udp/relay.js';

export interface ProxyConfig {
  readonly port: number;
  readonly families: readonly Family[];
  readonly transports: readonly Transport[];
  readonly upstream: UpstreamMode;
  readonly upstreamMark: number;
  readonly connectTimeoutMs: number;
  readonly tcpIdleTimeoutMs: number;
  readonly udpIdleTimeoutMs: number;
  readonly maxUdpSessions: number;
  readonly udpMapping: UdpMapping;
}

export const DEFAULT_PROXY_CONFIG: ProxyConfig = {
  port: 8000,
  families: [4, 6],
  transports: ['tcp', 'udp'],
  upstream: 'direct',
  upstreamMark: 0x2,
  connectTimeoutMs: 10_000,
  tcpIdleTimeoutMs: 600_000,
  udpIdleTimeoutMs: 60_000,
  maxUdpSessions: 65_536,
  udpMapping: 'endpoint-dependent',
};

export interface ProxyDeps {
  readonly sockets?: SocketApi;
  readonly emit: EventSink;
}

export class Proxy {
  private readonly tcp: TcpRelay[] = [];
  private udp: UdpRelay | undefined;
  private readonly sockets: SocketApi;

  constructor(
    readonly config: ProxyConfig,
    private readonly deps: ProxyDeps,
  ) {
    this.sockets = deps.sockets ?? new SocketApi();
  }

  async start(): Promise<Endpoint[]> {
    const locals: Endpoint[] = [];
    const localAddresses = localAddressCache();
    try {
      if (this.config.transports.includes('tcp')) {
        for (const family of this.config.families) {
          const relay = new TcpRelay(
            {
              family,
              port: this.config.port,
              upstream: this.config.upstream,
              upstreamMark: this.config.upstreamMark,
              connectTimeoutMs: this.config.connectTimeoutMs,
              idleTimeoutMs: this.config.tcpIdleTimeoutMs,
              backlog: 1024,
              reusePort: false,
            },
            { sockets: this.sockets, emit: this.deps.emit, localAddresses },
          );
          this.tcp.push(relay);
          locals.push(await relay.start());
        }
      }
      if (this.config.transports.includes('udp')) {
        this.udp = new UdpRelay(
          {
            families: this.config.families,
            port: this.config.port,
            upstream: this.config.upstream,
            upstreamMark: this.config.upstreamMark,
            idleTimeoutMs: this.config.udpIdleTimeoutMs,
            maxSessions: this.config.maxUdpSessions,
            mapping: this.config.udpMapping,
          },
          { sockets: this.sockets, emit: this.deps.emit },
        );
        locals.push(...(await this.udp.start()));
      }
    } catch (error) {
      await this.stop(0);
      throw error;
    }
    return locals;
  }

  /** The UDP relay's counters, when UDP is relayed. */
  udpCounters(): UdpCounters | undefined {
    return this.udp?.counters();
  }

  /** Stop accepting, let TCP flows finish for up to graceMs, then close everything. */
  async stop(graceMs = 5000): Promise<void> {
    const udp = this.udp;
    this.udp = undefined;
    await Promise.all([...this.tcp.map((t) => t.stop(graceMs)), udp?.stop()]);
    this.tcp.length = 0;
  }
}

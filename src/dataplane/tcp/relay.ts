/**
 * Transparent TCP relay: a listener with IP_TRANSPARENT receives TPROXY'd connections; the accepted
 * socket's local address is the original destination; bytes are relayed to it and back.
 *
 * Upstream `direct`: the proxy host's own address as source. `transparent`: the upstream socket is
 * bound to the client's address (IP_TRANSPARENT), so the server sees the client. Both carry SO_MARK
 * so the kernel rules never intercept the proxy's own traffic again.
 */
import net from 'node:net';
import { TproxyError } from '../../core/errors.js';
import type { Family } from '../../core/net/constants.js';
import { anyAddress, normalizeAddress, type Endpoint } from '../../core/net/sockaddr.js';
import type { SocketApi } from '../../sys/socket.js';
import type { EventSink, RefusalReason, UpstreamMode } from '../events.js';

export interface TcpRelayConfig {
  readonly family: Family;
  /** Listen address; default the wildcard of the family. */
  readonly address?: string;
  readonly port: number;
  readonly upstream: UpstreamMode;
  readonly upstreamMark: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly backlog: number;
  readonly reusePort: boolean;
}

export interface TcpRelayDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
  /** Addresses of this host (for loop and direct-connection refusal). */
  readonly localAddresses: () => ReadonlySet<string>;
}

const endpointOf = (family: Family, address: string | undefined, port: number | undefined): Endpoint => ({
  family,
  address: normalizeAddress(address ?? anyAddress(family)),
  port: port ?? 0,
});

export class TcpRelay {
  private server: net.Server | undefined;
  private nextId = 1;
  private readonly flows = new Set<net.Socket>();

  constructor(
    private readonly config: TcpRelayConfig,
    private readonly deps: TcpRelayDeps,
  ) {}

  /** Open the transparent listener; throws TproxyError (EADDRINUSE, EPERM ...) with advice. */
  async start(): Promise<Endpoint> {
    const { sockets } = this.deps;
    const { family } = this.config;
    const fd = sockets.open({ family, transport: 'tcp', transparent: true, reuseAddress: true, reusePort: this.config.reusePort });
    try {
      sockets.bind(fd, { family, address: this.config.address ?? anyAddress(family), port: this.config.port });
      sockets.listen(fd, this.config.backlog);
    } catch (error) {
      sockets.close(fd);
      throw error;
    }
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => this.onConnection(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.deps.emit({ type: 'error', code: (error as NodeJS.ErrnoException).code ?? 'ERR_SYSCALL', message: `tcp listener: ${error.message}` }));
    const local = sockets.localEndpoint(fd);
    this.deps.emit({ type: 'listening', transport: 'tcp', family, local });
    return local;
  }

  /** Stop accepting; flows in progress continue until they end or `stop(deadline)` closes them. */
  async stop(graceMs = 0): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.flows.size === 0) return;
    const deadline = Date.now() + graceMs;
    while (this.flows.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const socket of this.flows) socket.destroy();
  }

  get activeFlows(): number {
    return this.flows.size;
  }

  private refusal(client: Endpoint, destination: Endpoint): RefusalReason | undefined {
    const local = this.deps.localAddresses();
    if (local.has(destination.address)) {
      // Either a client connected to the listener itself (not through TPROXY), or the original
      // destination is this host: relaying would make the proxy dial itself.
      return destination.port === this.config.port ? 'not-intercepted' : 'loop';
    }
    if (client.address === destination.address) return 'loop';
    return undefined;
  }

  private onConnection(client: net.Socket): void {
    const { family } = this.config;
    const clientEnd = endpointOf(family, client.remoteAddress, client.remotePort);
    const destination = endpointOf(family, client.localAddress, client.localPort);
    const reason = this.refusal(clientEnd, destination);
    if (reason) {
      this.deps.emit({ type: 'tcp.refused', client: clientEnd, originalDestination: destination, reason });
      client.resetAndDestroy();
      return;
    }
    const id = this.nextId++;
    const started = Date.now();
    this.deps.emit({ type: 'tcp.accept', id, client: clientEnd, originalDestination: destination });

    let upstream: net.Socket;
    try {
      upstream = this.openUpstream(clientEnd);
    } catch (error) {
      this.deps.emit({ type: 'error', code: error instanceof TproxyError ? error.code : 'ERR_SYSCALL', message: `upstream socket for ${clientEnd.address}: ${(error as Error).message}` });
      client.resetAndDestroy();
      return;
    }
    this.flows.add(client);
    let closed = false;
    let reason2 = 'done';
    const finish = (why: string): void => {
      if (closed) return;
      closed = true;
      reason2 = why;
      clearTimeout(connectTimer);
      this.flows.delete(client);
      this.deps.emit({
        type: 'tcp.close',
        id,
        client: clientEnd,
        originalDestination: destination,
        bytesFromClient: client.bytesRead,
        bytesFromServer: upstream.bytesRead,
        durationMs: Date.now() - started,
        reason: reason2,
      });
    };
    const connectTimer = setTimeout(() => {
      upstream.destroy();
      client.resetAndDestroy();
      finish('connect-timeout');
    }, this.config.connectTimeoutMs);

    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      this.deps.emit({ type: 'tcp.connected', id, upstreamLocal: endpointOf(family, upstream.localAddress, upstream.localPort) });
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      if (this.config.idleTimeoutMs > 0) {
        const idle = (): void => {
          upstream.destroy();
          client.resetAndDestroy();
          finish('idle-timeout');
        };
        client.setTimeout(this.config.idleTimeoutMs, idle);
      }
    });
    // A reset or failure on one side becomes a reset on the other, never a silent close.
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (!client.destroyed) client.resetAndDestroy();
      finish(error.code ?? 'error');
    });
    client.on('error', (error: NodeJS.ErrnoException) => {
      if (!upstream.destroyed) upstream.resetAndDestroy();
      finish(error.code ?? 'error');
    });
    let ended = 0;
    const onClose = (): void => {
      ended++;
      if (ended === 2) finish('done');
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
    upstream.connect({ host: destination.address, port: destination.port });
  }

  private openUpstream(client: Endpoint): net.Socket {
    const { sockets } = this.deps;
    const { family, upstream, upstreamMark } = this.config;
    const transparent = upstream === 'transparent';
    const fd = sockets.open({ family, transport: 'tcp', mark: upstreamMark, transparent, bindAddressNoPort: transparent && family === 4, reuseAddress: transparent });
    try {
      if (transparent) sockets.bind(fd, { family, address: client.address, port: 0 });
    } catch (error) {
      sockets.close(fd);
      throw error;
    }
    return new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
  }
}

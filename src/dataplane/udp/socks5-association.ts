/**
 * The control side of one SOCKS5 UDP association (RFC 1928 section 7, RFC 1929 credentials), for
 * a UDP session that leaves through a socks5 outbound. Driven by the UDP loop's epoll, never
 * blocking:
 *
 *   connecting   non-blocking connect() of the TCP control connection to the proxy (EPOLLOUT);
 *   handshake    greeting, username/password when the outbound has them, UDP ASSOCIATE with
 *                0.0.0.0:0 / [::]:0 ("the address I send from is not known yet"), each reply
 *                peeked and exactly the bytes the state machine claims read (core/upstream/socks5.ts);
 *   ready        the reply's BND.ADDR:BND.PORT is the relay (0.0.0.0 or :: there means the proxy's
 *                own address: udpRelayEndpoint); the control connection carries nothing more and
 *                must stay open for as long as the association is used. Its end (EOF, reset) ends
 *                the association, and with it the session.
 *
 * Datagrams for the relay that come while the association is set up wait in a queue bounded in
 * count and bytes (see MAX_QUEUED_*); past the bound they are dropped and the caller counts them.
 * The whole set-up must finish by `deadlineMs` (the loop checks it): a proxy that accepts the
 * connection and then says nothing fails the session, it does not hold it forever.
 *
 * Descriptors: the control socket is one; the loop takes it from the budget with the session's others.
 */
import { EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, SOL_SOCKET, SO_ERROR } from '../../core/net/constants.js';
import { errnoName } from '../../core/errno.js';
import { TproxyError } from '../../core/errors.js';
import type { Endpoint } from '../../core/net/sockaddr.js';
import { anyAddress } from '../../core/net/sockaddr.js';
import type { UpstreamProxy } from '../../core/upstream/proxy-url.js';
import { Socks5Handshake } from '../../core/upstream/socks5.js';
import { udpRelayEndpoint } from '../../core/upstream/socks5-address.js';
import type { Epoll } from '../../sys/epoll.js';
import type { SocketApi } from '../../sys/socket.js';

/** Datagrams and bytes (SOCKS headers included) that may wait for one association to be ready. */
export const MAX_QUEUED_DATAGRAMS = 64;
export const MAX_QUEUED_BYTES = 256 * 1024;
/** Time from the control connection's connect() to the UDP ASSOCIATE reply. */
export const SOCKS5_SETUP_TIMEOUT_MS = 5000;

/**
 * Why an association failed, as counted (one error reason each):
 *   socks5-connect-failed  the TCP connection to the proxy failed (refused, unreachable);
 *   socks5-refused         the proxy answered UDP ASSOCIATE with REP != 0 (e.g. 7: command not supported);
 *   socks5-auth-failed     no acceptable method, or the username/password was refused;
 *   socks5-protocol        the proxy's bytes are not SOCKS5 (garbage, an unknown address type, a relay by name);
 *   socks5-timeout         no UDP ASSOCIATE reply within SOCKS5_SETUP_TIMEOUT_MS;
 *   socks5-control-closed  the control connection ended (the proxy closed it, reset it, or died).
 */
export const SOCKS5_FAILURE_REASONS = ['socks5-connect-failed', 'socks5-refused', 'socks5-auth-failed', 'socks5-protocol', 'socks5-timeout', 'socks5-control-closed'] as const;
export type Socks5FailureReason = (typeof SOCKS5_FAILURE_REASONS)[number];

export type AssociationStep =
  | { readonly kind: 'wait' }
  /** The relay to send datagrams to (its family is the proxy's, or the caller must refuse it). */
  | { readonly kind: 'ready'; readonly relay: Endpoint }
  /** `detail`: the handshake's own reason or the errno name, for the log line. */
  | { readonly kind: 'failed'; readonly reason: Socks5FailureReason; readonly detail: string };

export type AssociationState = 'connecting' | 'handshake' | 'ready';

export interface AssociationOptions {
  /** SO_MARK of the control connection (the listener's upstream mark; CAP_NET_ADMIN); absent: none. */
  readonly mark?: number;
  readonly dscp?: number;
  readonly ttl?: number;
  readonly nowMs: number;
  readonly timeoutMs?: number;
}

/** The handshake's refusal reasons (core/upstream/socks5.ts) -> the counted reason. */
function failureOf(reason: string): Socks5FailureReason {
  if (reason.startsWith('socks5-auth')) return 'socks5-auth-failed';
  if (reason === 'socks5-protocol') return 'socks5-protocol';
  return 'socks5-refused';
}

export class Socks5Association {
  state: AssociationState = 'connecting';
  readonly deadlineMs: number;
  /** Set once ready. */
  relay: Endpoint | undefined;
  private readonly handshake: Socks5Handshake;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  /** Handshake replies are at most 262 bytes; bytes after the association are read and dropped. */
  private readonly buffer = Buffer.alloc(512);

  private constructor(
    private readonly api: SocketApi,
    private readonly epoll: Epoll,
    readonly proxy: UpstreamProxy,
    readonly controlFd: number,
    options: AssociationOptions,
  ) {
    this.deadlineMs = options.nowMs + (options.timeoutMs ?? SOCKS5_SETUP_TIMEOUT_MS);
    const family = proxy.endpoint.family;
    this.handshake = new Socks5Handshake({ family, address: anyAddress(family), port: 0 }, proxy.auth, 'udp-associate');
  }

  /**
   * Open the control connection (non-blocking connect, watched by `epoll`). Throws TproxyError
   * when the socket cannot be made; the caller holds the descriptor budget for it.
   */
  static open(api: SocketApi, epoll: Epoll, proxy: UpstreamProxy, options: AssociationOptions): Socks5Association {
    const fd = api.open({ family: proxy.endpoint.family, transport: 'tcp', ...(options.mark !== undefined ? { mark: options.mark } : {}), ...(options.dscp !== undefined ? { dscp: options.dscp } : {}), ...(options.ttl !== undefined ? { ttl: options.ttl } : {}) });
    try {
      api.connect(fd, proxy.endpoint);
      epoll.add(fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP);
    } catch (error) {
      api.close(fd);
      throw error;
    }
    return new Socks5Association(api, epoll, proxy, fd, options);
  }

  /** Keep a wrapped datagram until the relay is known; false (dropped) past the bound. */
  hold(datagram: Buffer): boolean {
    if (this.queue.length >= MAX_QUEUED_DATAGRAMS || this.queuedBytes + datagram.length > MAX_QUEUED_BYTES) return false;
    this.queue.push(datagram);
    this.queuedBytes += datagram.length;
    return true;
  }

  /** The datagrams held so far, oldest first; the queue is empty afterwards. */
  takeHeld(): Buffer[] {
    const held = this.queue.splice(0);
    this.queuedBytes = 0;
    return held;
  }

  get held(): number {
    return this.queue.length;
  }

  /** The control socket is ready (`events` from epoll): move the association on. */
  onEvents(events: number): AssociationStep {
    switch (this.state) {
      case 'connecting':
        return this.onConnect(events);
      case 'handshake':
        return this.onHandshakeBytes();
      case 'ready':
        return this.onControlBytes();
    }
  }

  private onConnect(events: number): AssociationStep {
    if (events & (EPOLLERR | EPOLLHUP)) {
      const soError = this.api.getInt(this.controlFd, SOL_SOCKET, SO_ERROR);
      return { kind: 'failed', reason: 'socks5-connect-failed', detail: soError !== 0 ? errnoName(soError) : 'ECONNRESET' };
    }
    if ((events & EPOLLOUT) === 0) return { kind: 'wait' };
    const sent = this.sendAll(this.handshake.first);
    if (sent) return sent;
    this.state = 'handshake';
    this.epoll.modify(this.controlFd, EPOLLIN | EPOLLRDHUP);
    return { kind: 'wait' };
  }

  /** Peek at the proxy's reply and read exactly what the handshake claims (a reply may come in pieces). */
  private onHandshakeBytes(): AssociationStep {
    for (let turn = 0; turn < 8; turn++) {
      let n: number | null;
      try {
        n = this.api.peek(this.controlFd, this.buffer);
      } catch (error) {
        return { kind: 'failed', reason: 'socks5-control-closed', detail: errnoOf(error) };
      }
      if (n === null) return { kind: 'wait' };
      if (n === 0) return { kind: 'failed', reason: 'socks5-control-closed', detail: 'closed before the UDP ASSOCIATE reply' };
      const step = this.handshake.offer(this.buffer.subarray(0, n));
      if (step.take > 0) this.api.recv(this.controlFd, this.buffer.subarray(0, step.take));
      switch (step.kind) {
        case 'more':
          continue;
        case 'send': {
          const failed = this.sendAll(step.send);
          if (failed) return failed;
          continue;
        }
        case 'failed':
          return { kind: 'failed', reason: failureOf(step.reason), detail: step.reason };
        case 'done':
          return this.onReply();
      }
    }
    return { kind: 'wait' };
  }

  private onReply(): AssociationStep {
    const bound = this.handshake.bound;
    if (!bound) return { kind: 'failed', reason: 'socks5-protocol', detail: 'no bound address in the reply' };
    const relay = udpRelayEndpoint(bound, this.proxy.endpoint);
    if (relay.family === 'domain') return { kind: 'failed', reason: 'socks5-protocol', detail: `relay named ${relay.name}: names are not resolved` };
    if (relay.port === 0) return { kind: 'failed', reason: 'socks5-protocol', detail: 'relay port 0' };
    this.state = 'ready';
    this.relay = relay;
    return { kind: 'ready', relay };
  }

  /** After the reply nothing is expected: bytes are read and dropped; EOF or an error ends the association. */
  private onControlBytes(): AssociationStep {
    for (let turn = 0; turn < 8; turn++) {
      let n: number | null;
      try {
        n = this.api.recv(this.controlFd, this.buffer);
      } catch (error) {
        return { kind: 'failed', reason: 'socks5-control-closed', detail: errnoOf(error) };
      }
      if (n === null) return { kind: 'wait' };
      if (n === 0) return { kind: 'failed', reason: 'socks5-control-closed', detail: 'closed by the proxy' };
    }
    return { kind: 'wait' };
  }

  /** Requests are small and the socket's buffer empty: a short send is a broken connection. */
  private sendAll(bytes: Uint8Array): AssociationStep | undefined {
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    try {
      if (this.api.send(this.controlFd, data) === data.length) return undefined;
    } catch (error) {
      return { kind: 'failed', reason: 'socks5-control-closed', detail: errnoOf(error) };
    }
    return { kind: 'failed', reason: 'socks5-control-closed', detail: 'short send' };
  }
}

function errnoOf(error: unknown): string {
  if (error instanceof TproxyError && typeof error.details?.['errno'] === 'string') return error.details['errno'];
  return error instanceof Error ? error.message : String(error);
}

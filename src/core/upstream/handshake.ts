/**
 * The client side of an upstream proxy's handshake, as a pure state machine: the data plane sends
 * `first`, then offers the bytes waiting on the socket (peeked, not yet read) and reads exactly
 * the `take` bytes the handshake claims. Bytes after the proxy's last reply are never claimed, so
 * they stay in the socket for the relay (a server that speaks first, e.g. SSH or SMTP, loses
 * nothing). Every claim is at least one byte while bytes are offered, so a level-triggered loop
 * cannot spin on a reply that arrives in pieces.
 */
import type { Endpoint } from '../net/sockaddr.js';
import { HttpConnectHandshake } from './http-connect.js';
import type { UpstreamProxy } from './proxy-url.js';
import { Socks5Handshake } from './socks5.js';

export type HandshakeStep =
  /** The current reply is incomplete: read `take` bytes and wait for more. */
  | { readonly kind: 'more'; readonly take: number }
  /** A reply is complete: read `take` bytes, send `send`, wait for the next reply. */
  | { readonly kind: 'send'; readonly take: number; readonly send: Uint8Array }
  /** The tunnel is open: read `take` bytes; what follows belongs to the destination. */
  | { readonly kind: 'done'; readonly take: number }
  /**
   * The proxy refused or broke the protocol. `errno` is set when the refusal has an errno meaning
   * (SOCKS5 "connection refused" is ECONNREFUSED), for counters shared with direct connects.
   */
  | { readonly kind: 'failed'; readonly take: number; readonly reason: string; readonly errno?: string };

export interface UpstreamHandshake {
  /** What to send as soon as the TCP connection to the proxy is up. */
  readonly first: Uint8Array;
  offer(peeked: Uint8Array): HandshakeStep;
}

export function createHandshake(proxy: UpstreamProxy, destination: Endpoint): UpstreamHandshake {
  return proxy.protocol === 'socks5' ? new Socks5Handshake(destination, proxy.auth) : new HttpConnectHandshake(destination, proxy.auth);
}

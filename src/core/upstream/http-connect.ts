/**
 * HTTP CONNECT (RFC 9110 section 9.3.6) through an HTTP proxy, with Basic credentials when given.
 * The response head is claimed up to and including its blank line; a 2xx opens the tunnel.
 */
import type { Endpoint } from '../net/sockaddr.js';
import type { HandshakeStep, UpstreamHandshake } from './handshake.js';

/** A proxy that sends more than this before its blank line is not speaking HTTP to us. */
export const MAX_RESPONSE_HEAD = 16 * 1024;
const END = Buffer.from('\r\n\r\n');

/**
 * Refusals with an errno meaning, counted with direct connects' errors under it (like SOCKS5's
 * replies): 407 our credentials (or their absence), 401 the same from a proxy that answers with
 * the origin's code, 403 policy: EACCES, as a SOCKS5 authentication failure; 502 / 503 the proxy
 * could not reach the destination; 504 it timed out. Other codes count under their reason.
 */
const STATUS_ERRNO: Readonly<Record<number, string>> = { 401: 'EACCES', 403: 'EACCES', 407: 'EACCES', 502: 'ECONNREFUSED', 503: 'ECONNREFUSED', 504: 'ETIMEDOUT' };

export class HttpConnectHandshake implements UpstreamHandshake {
  readonly first: Uint8Array;
  private head = Buffer.alloc(0);

  constructor(destination: Endpoint, auth?: { readonly username: string; readonly password: string }) {
    const authority = destination.family === 6 ? `[${destination.address}]:${destination.port}` : `${destination.address}:${destination.port}`;
    const credentials = auth ? `Proxy-Authorization: Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}\r\n` : '';
    this.first = Buffer.from(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${credentials}\r\n`, 'latin1');
  }

  offer(peeked: Uint8Array): HandshakeStep {
    // The blank line may straddle what was claimed before and what is offered now.
    const seen = Buffer.concat([this.head.subarray(Math.max(0, this.head.length - 3)), peeked]);
    const carried = Math.min(3, this.head.length);
    const end = seen.indexOf(END);
    const take = end < 0 ? peeked.length : end + END.length - carried;
    this.head = Buffer.concat([this.head, peeked.subarray(0, take)]);
    // The bound holds after every read, a head that arrived whole included.
    if (this.head.length > MAX_RESPONSE_HEAD) return { kind: 'failed', take, reason: 'http-connect-protocol', errno: 'EPROTO' };
    if (end < 0) return { kind: 'more', take };
    const status = /^HTTP\/1\.[01] (\d{3})[ \r]/.exec(this.head.toString('latin1'));
    if (!status) return { kind: 'failed', take, reason: 'http-connect-protocol', errno: 'EPROTO' };
    const code = Number(status[1]);
    if (code >= 200 && code < 300) return { kind: 'done', take };
    const errno = STATUS_ERRNO[code];
    return { kind: 'failed', take, reason: `http-connect-${code}`, ...(errno ? { errno } : {}) };
  }
}

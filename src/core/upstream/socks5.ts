/**
 * SOCKS5 CONNECT (RFC 1928), with username/password authentication (RFC 1929) when credentials
 * are given. Requests are sent one at a time, each after the proxy's reply to the previous one
 * (no pipelining: some proxies drop bytes sent before they chose a method).
 */
import ipaddr from 'ipaddr.js';
import type { Endpoint } from '../net/sockaddr.js';
import type { HandshakeStep, UpstreamHandshake } from './handshake.js';

const VERSION = 5;
const METHOD_NONE = 0x00;
const METHOD_USERPASS = 0x02;
const NO_ACCEPTABLE_METHOD = 0xff;
const USERPASS_VERSION = 1;
const CMD_CONNECT = 1;
const ATYP_IPV4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_IPV6 = 4;

/** RFC 1928 section 6 reply codes; the ones with an errno meaning count with direct connects. */
const REPLY_FAILURES: Readonly<Record<number, { readonly reason: string; readonly errno?: string }>> = {
  1: { reason: 'socks5-general-failure' },
  2: { reason: 'socks5-not-allowed' },
  3: { reason: 'socks5-network-unreachable', errno: 'ENETUNREACH' },
  4: { reason: 'socks5-host-unreachable', errno: 'EHOSTUNREACH' },
  5: { reason: 'socks5-connection-refused', errno: 'ECONNREFUSED' },
  6: { reason: 'socks5-ttl-expired', errno: 'ETIMEDOUT' },
  7: { reason: 'socks5-command-not-supported' },
  8: { reason: 'socks5-address-type-not-supported' },
};

type Stage = 'method' | 'auth' | 'connect';

export class Socks5Handshake implements UpstreamHandshake {
  readonly first: Uint8Array;
  private stage: Stage = 'method';
  private reply = new Uint8Array(0);

  constructor(
    private readonly destination: Endpoint,
    private readonly auth?: { readonly username: string; readonly password: string },
  ) {
    this.first = auth ? Uint8Array.of(VERSION, 2, METHOD_NONE, METHOD_USERPASS) : Uint8Array.of(VERSION, 1, METHOD_NONE);
  }

  offer(peeked: Uint8Array): HandshakeStep {
    // Claim in steps: the first bytes of a reply tell how long the rest is.
    let take = 0;
    for (let missing = this.missing(); missing > 0 && take < peeked.length; missing = this.missing()) {
      const part = peeked.subarray(take, take + missing);
      const grown = new Uint8Array(this.reply.length + part.length);
      grown.set(this.reply);
      grown.set(part, this.reply.length);
      this.reply = grown;
      take += part.length;
    }
    const reply = this.reply;
    if (reply.length > 0 && reply[0] !== (this.stage === 'auth' ? USERPASS_VERSION : VERSION)) {
      return { kind: 'failed', take, reason: 'socks5-protocol', errno: 'EPROTO' };
    }
    // A success with an address type we cannot size is no reply we understand: its bytes must not
    // reach the client as the server's data.
    if (this.stage === 'connect' && reply.length >= 4 && reply[3] !== ATYP_IPV4 && reply[3] !== ATYP_IPV6 && reply[3] !== ATYP_DOMAIN) {
      return { kind: 'failed', take, reason: 'socks5-protocol', errno: 'EPROTO' };
    }
    if (this.stage === 'connect' && reply.length >= 2 && reply[1] !== 0) {
      const failure = REPLY_FAILURES[reply[1]!] ?? { reason: 'socks5-protocol', errno: 'EPROTO' };
      return { kind: 'failed', take, ...failure };
    }
    if (this.missing() > 0) return { kind: 'more', take };
    this.reply = new Uint8Array(0);
    switch (this.stage) {
      case 'method':
        return this.onMethod(reply[1]!, take);
      case 'auth':
        if (reply[1] !== 0) return { kind: 'failed', take, reason: 'socks5-auth-failed', errno: 'EACCES' };
        this.stage = 'connect';
        return { kind: 'send', take, send: this.connectRequest() };
      case 'connect':
        return { kind: 'done', take };
    }
  }

  /** Bytes of the current reply not received yet (at least enough to learn its full length). */
  private missing(): number {
    const have = this.reply.length;
    if (this.stage !== 'connect') return 2 - have;
    // VER REP RSV ATYP, then the bound address (length by type), then the port.
    if (have < 5) return 5 - have;
    const atyp = this.reply[3];
    const addressBytes = atyp === ATYP_IPV4 ? 4 : atyp === ATYP_IPV6 ? 16 : atyp === ATYP_DOMAIN ? 1 + this.reply[4]! : -1;
    if (addressBytes < 0) return 0; // unknown type: refused by offer()
    return 4 + addressBytes + 2 - have;
  }

  private onMethod(method: number, take: number): HandshakeStep {
    if (method === METHOD_NONE) {
      this.stage = 'connect';
      return { kind: 'send', take, send: this.connectRequest() };
    }
    if (method === METHOD_USERPASS && this.auth) {
      this.stage = 'auth';
      const user = Buffer.from(this.auth.username);
      const pass = Buffer.from(this.auth.password);
      return { kind: 'send', take, send: Buffer.concat([Uint8Array.of(USERPASS_VERSION, user.length), user, Uint8Array.of(pass.length), pass]) };
    }
    const reason = method === NO_ACCEPTABLE_METHOD ? (this.auth ? 'socks5-auth-rejected' : 'socks5-auth-required') : 'socks5-protocol';
    return { kind: 'failed', take, reason, errno: method === NO_ACCEPTABLE_METHOD ? 'EACCES' : 'EPROTO' };
  }

  private connectRequest(): Uint8Array {
    const { address, port } = this.destination;
    const bytes = ipaddr.parse(address).toByteArray();
    return Uint8Array.of(VERSION, CMD_CONNECT, 0, bytes.length === 4 ? ATYP_IPV4 : ATYP_IPV6, ...bytes, port >> 8, port & 0xff);
  }
}

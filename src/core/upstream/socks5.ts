/**
 * SOCKS5 CONNECT and UDP ASSOCIATE (RFC 1928), with username/password authentication (RFC 1929)
 * when credentials are given. Requests are sent one at a time, each after the proxy's reply to the
 * previous one (no pipelining: some proxies drop bytes sent before they chose a method).
 *
 * The reply's bound address is kept in `bound`: for UDP ASSOCIATE it is the relay to send
 * datagrams to (0.0.0.0 or :: as many servers answer: see udpRelayEndpoint), and the TCP
 * connection must stay open for as long as the association is used.
 */
import type { Endpoint } from '../net/sockaddr.js';
import type { HandshakeStep, UpstreamHandshake } from './handshake.js';
import { decodeSocks5Address, encodeSocks5Address, socks5AddressLength, type Socks5Address } from './socks5-address.js';

const VERSION = 5;
const METHOD_NONE = 0x00;
const METHOD_USERPASS = 0x02;
const NO_ACCEPTABLE_METHOD = 0xff;
const USERPASS_VERSION = 1;
const COMMANDS = { connect: 1, 'udp-associate': 3 } as const;
export type Socks5Command = keyof typeof COMMANDS;

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

type Stage = 'method' | 'auth' | 'request';

export class Socks5Handshake implements UpstreamHandshake {
  readonly first: Uint8Array;
  private stage: Stage = 'method';
  private reply = new Uint8Array(0);
  /** The reply's BND.ADDR and BND.PORT, once the handshake is done. */
  bound: Socks5Address | undefined;

  /**
   * `destination`: for CONNECT, where to connect; for UDP ASSOCIATE, the address and port the
   * client will send datagrams from, or 0.0.0.0:0 / [::]:0 when it does not know them yet.
   */
  constructor(
    private readonly destination: Endpoint,
    private readonly auth?: { readonly username: string; readonly password: string },
    private readonly command: Socks5Command = 'connect',
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
    if (this.stage === 'request' && reply.length >= 2 && reply[1] !== 0) {
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
        this.stage = 'request';
        return { kind: 'send', take, send: this.request() };
      case 'request': {
        const bound = decodeSocks5Address(reply, 3);
        if ('error' in bound) return { kind: 'failed', take, reason: 'socks5-protocol', errno: 'EPROTO' };
        this.bound = bound.address;
        return { kind: 'done', take };
      }
    }
  }

  /** Bytes of the current reply not received yet (at least enough to learn its full length). */
  private missing(): number {
    const have = this.reply.length;
    if (this.stage !== 'request') return 2 - have;
    // VER REP RSV, then ATYP, the bound address (length by type) and the port.
    if (have < 5) return 5 - have;
    const addressBytes = socks5AddressLength(this.reply, 3);
    if (addressBytes < 0) return 0; // unknown type: complete as far as we can tell; rejected when decoded
    return 3 + addressBytes - have;
  }

  private onMethod(method: number, take: number): HandshakeStep {
    if (method === METHOD_NONE) {
      this.stage = 'request';
      return { kind: 'send', take, send: this.request() };
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

  private request(): Uint8Array {
    return Buffer.concat([Uint8Array.of(VERSION, COMMANDS[this.command], 0), encodeSocks5Address(this.destination)]);
  }
}

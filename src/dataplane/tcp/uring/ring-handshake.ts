/**
 * An upstream proxy's handshake (SOCKS5, HTTP CONNECT) through the ring, for the uring engine:
 * the pure state machine of core/upstream/handshake.ts drives it, as on the splice engine, but the
 * proxy's replies are received (into a provided buffer, copied out at once) instead of peeked: the
 * bytes a step does not claim stay held here and are offered again, first, with the next ones, and
 * those after the proxy's last reply (a server that speaks first) are the first bytes the relay
 * sends to the client. Requests go out from their own memory, a short send going on where it
 * stopped. The engine bounds it in time (the connect timeout covers connect and handshake).
 *
 * Operation kinds 18 and 19 in user_data are this file's.
 */
import { errnoName } from '../../../core/errno.js';
import * as U from '../../../core/net/io-uring.js';
import type { UpstreamHandshake } from '../../../core/upstream/handshake.js';
import type { BufferRing, IoUring } from '../../../sys/io-uring.js';
import type { Libc } from '../../../sys/libc.js';

export const HandshakeOp = { Send: 18, Recv: 19 } as const;

export interface HandshakeState {
  readonly machine: UpstreamHandshake;
  /** Received, not yet claimed by the state machine. */
  held: Buffer;
  /** The request being sent, and how much of it went. */
  out: Buffer;
  sent: number;
  readonly deadline: number;
}

export type HandshakeEnd = { readonly kind: 'open'; readonly rest: Buffer } | { readonly kind: 'failed'; readonly reason: string; readonly errno: string | undefined };

export interface HandshakePair {
  readonly id: number;
  ufd: number;
  pending: number;
  handshake: HandshakeState | undefined;
}

export class RingHandshake<P extends HandshakePair> {
  private readonly memory: Buffer;

  constructor(
    private readonly ring: IoUring,
    private readonly buffers: BufferRing,
    private readonly libc: Libc,
    private readonly options: { readonly group: number; readonly bufferBytes: number; readonly giveBack: (bid: number) => void; readonly ended: (pair: P, end: HandshakeEnd) => void },
  ) {
    this.memory = buffers.memory();
  }

  /** The TCP connection to the proxy is up: send the first request. */
  start(pair: P, machine: UpstreamHandshake, deadline: number): void {
    pair.handshake = { machine, held: Buffer.alloc(0), out: Buffer.alloc(0), sent: 0, deadline };
    this.send(pair, pair.handshake, machine.first);
  }

  /** A completion of this file's kinds (`pending` already counted down by the engine). False: not one of them. */
  complete(kind: number, pair: P, res: number, flags: number): boolean {
    if (kind !== HandshakeOp.Send && kind !== HandshakeOp.Recv) return false;
    const h = pair.handshake;
    if (!h) {
      if (flags & U.IORING_CQE_F_BUFFER) this.options.giveBack(flags >>> U.IORING_CQE_BUFFER_SHIFT);
      return true;
    }
    if (kind === HandshakeOp.Send) this.onSent(pair, h, res);
    else this.onRecv(pair, h, res, flags);
    return true;
  }

  private send(pair: P, h: HandshakeState, bytes: Uint8Array): void {
    h.out = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    h.sent = 0;
    this.sendRest(pair, h);
  }

  private sendRest(pair: P, h: HandshakeState): void {
    pair.pending++;
    this.ring.send(pair.ufd, this.libc.address(h.out) + BigInt(h.sent), h.out.length - h.sent, 0, HandshakeOp.Send, pair.id);
  }

  private onSent(pair: P, h: HandshakeState, res: number): void {
    if (res < 0) {
      this.fail(pair, 'proxy-send', errnoName(-res));
      return;
    }
    h.sent += res;
    if (h.sent < h.out.length) this.sendRest(pair, h);
    // Bytes of the next reply may be held already (they came with the last one).
    else if (h.held.length > 0) this.step(pair, h);
    else this.recv(pair);
  }

  private recv(pair: P): void {
    pair.pending++;
    this.ring.recvSelect(pair.ufd, this.options.group, this.options.bufferBytes, HandshakeOp.Recv, pair.id);
  }

  private onRecv(pair: P, h: HandshakeState, res: number, flags: number): void {
    if (res === 0) {
      this.fail(pair, 'proxy-closed', 'ECONNRESET');
      return;
    }
    if (res < 0) {
      this.fail(pair, `proxy-${errnoName(-res)}`, errnoName(-res));
      return;
    }
    const bid = flags >>> U.IORING_CQE_BUFFER_SHIFT;
    this.buffers.taken();
    const at = bid * this.buffers.size;
    h.held = Buffer.concat([h.held, this.memory.subarray(at, at + res)]);
    this.options.giveBack(bid);
    this.step(pair, h);
  }

  /** Offer what is held; claim what the step takes. */
  private step(pair: P, h: HandshakeState): void {
    const step = h.machine.offer(h.held);
    h.held = h.held.subarray(step.take);
    switch (step.kind) {
      case 'more':
        this.recv(pair);
        return;
      case 'send':
        this.send(pair, h, step.send);
        return;
      case 'done':
        pair.handshake = undefined;
        this.options.ended(pair, { kind: 'open', rest: h.held });
        return;
      case 'failed':
        this.fail(pair, step.reason, step.errno);
    }
  }

  private fail(pair: P, reason: string, errno: string | undefined): void {
    pair.handshake = undefined;
    this.options.ended(pair, { kind: 'failed', reason, errno });
  }
}

/**
 * Reads the PROXY header off the front of an accepted connection (the stream engine's way of
 * peek-and-claim): each read is offered to the decoder with what came before; the decoder says
 * 'more', refuses, or names the header's length, and everything after it (the client's first
 * bytes, often in the same read) is handed back to go to the backend first. Bounded in time: a
 * header still incomplete at the deadline (one byte a second) is refused as 'header-timeout'.
 */
import type net from 'node:net';
import { decodeProxyHeader, type ProxyDecodeLimits } from '../../core/proxy-protocol/decode.js';
import type { ProxyHeader, ProxyInvalidReason } from '../../core/proxy-protocol/header.js';

/** Why a connection's header was refused: the decoder's reasons, the deadline, or an early close. */
export type HeaderRejection = ProxyInvalidReason | 'header-timeout' | 'closed-before-header';

/** The header was refused; `reason` names why, for the counters and the log. */
export class HeaderRejected extends Error {
  constructor(readonly reason: HeaderRejection) {
    super(`PROXY header refused: ${reason}`);
  }
}

export interface HeaderRead {
  readonly header: ProxyHeader;
  /** The bytes after the header that came with it: the client's, for the backend. */
  readonly early: Buffer;
}

export function readProxyHeader(socket: net.Socket, limits: ProxyDecodeLimits, timeoutMs: number): Promise<HeaderRead> {
  return new Promise((resolve, reject: (error: HeaderRejected) => void) => {
    let held: Buffer = Buffer.alloc(0);
    const finish = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
    };
    const fail = (reason: HeaderRejection): void => {
      finish();
      reject(new HeaderRejected(reason));
    };
    const onData = (chunk: Buffer): void => {
      held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
      const result = decodeProxyHeader(held, limits);
      if (result.kind === 'more') return;
      if (result.kind === 'invalid') fail(result.reason);
      else {
        finish();
        resolve({ header: result.header, early: held.subarray(result.take) });
      }
    };
    // A stream that ends inside the header is a truncated one; before any byte, a plain early close.
    const onEnd = (): void => fail(held.length > 0 ? 'truncated' : 'closed-before-header');
    const timer = setTimeout(() => fail('header-timeout'), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}

/**
 * Drives an upstream proxy's handshake (core/upstream) on a connected Node socket, for the stream
 * engine. Resolves with the bytes that arrived after the proxy's last reply: they come from the
 * destination and go to the client first.
 */
import type net from 'node:net';
import type { HandshakeStep, UpstreamHandshake } from '../../core/upstream/handshake.js';

/** The proxy refused or broke the handshake; `reason` names it for the flow's close. */
export class HandshakeFailure extends Error {
  constructor(
    readonly reason: string,
    readonly errno?: string,
  ) {
    super(`upstream proxy handshake failed: ${reason}`);
  }
}

export interface HandshakeResult {
  /** Destination bytes that came with the proxy's last reply. */
  readonly early: Buffer;
  /** Bytes the proxy's replies took (not counted as bytes from the server). */
  readonly handshakeBytes: number;
}

export function handshakeOverStream(socket: net.Socket, handshake: UpstreamHandshake): Promise<HandshakeResult> {
  return new Promise((resolve, reject: (failure: HandshakeFailure) => void) => {
    let claimed = 0;
    const finish = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
    };
    const onEnd = (): void => {
      finish();
      reject(new HandshakeFailure('proxy-closed', 'ECONNRESET'));
    };
    const onData = (chunk: Buffer): void => {
      let rest = chunk;
      while (rest.length > 0) {
        const step: HandshakeStep = handshake.offer(rest);
        claimed += step.take;
        rest = rest.subarray(step.take);
        if (step.kind === 'send') socket.write(step.send);
        else if (step.kind === 'done') {
          finish();
          resolve({ early: rest, handshakeBytes: claimed });
          return;
        } else if (step.kind === 'failed') {
          finish();
          reject(new HandshakeFailure(step.reason, step.errno));
          return;
        } else if (step.take === 0) return; // nothing claimed: wait for more (the contract says this cannot happen)
      }
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.write(handshake.first);
  });
}

/**
 * The stream engine's sniffing: the client's first bytes are read (Node streams cannot peek) until
 * sniffStream answers, the client sends its FIN, or the timeout passes; the bytes read go upstream
 * first, so nothing the client sent is lost. The splice engine peeks with MSG_PEEK instead.
 */
import type net from 'node:net';
import { MAX_STREAM_SNIFF_BYTES, sniffStream } from '../../core/sniff/stream.js';

export type SniffOutcome = 'tls' | 'http' | 'quic' | 'none' | 'timeout' | 'closed' | 'error';

export function sniffClient(client: net.Socket, timeoutMs: number, done: (outcome: SniffOutcome, name: string | undefined, early: { bytes: Buffer; ended: boolean }) => void): void {
  let bytes: Buffer = Buffer.alloc(0);
  let finished = false;
  const finish = (outcome: SniffOutcome, name: string | undefined, ended: boolean): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    client.pause();
    client.off('data', onData);
    client.off('end', onEnd);
    client.off('error', onError);
    done(outcome, name, { bytes, ended });
  };
  const onData = (chunk: Buffer): void => {
    bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
    const result = sniffStream(bytes);
    if (result.kind === 'name') finish(result.protocol, result.name, false);
    else if (result.kind === 'none' || bytes.length >= MAX_STREAM_SNIFF_BYTES) finish('none', undefined, false);
  };
  const onEnd = (): void => finish('closed', undefined, true);
  const onError = (): void => finish('error', undefined, false);
  const timer = setTimeout(() => finish('timeout', undefined, false), timeoutMs);
  client.on('data', onData);
  client.once('end', onEnd);
  client.once('error', onError);
  client.resume();
}

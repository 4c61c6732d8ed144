/**
 * Can a TCP connection be opened to this endpoint now? For readiness's upstream check: connect,
 * then close at once (nothing is sent). Resolves with the errno or `timeout`, never rejects.
 */
import net from 'node:net';
import type { Endpoint } from '../core/net/sockaddr.js';

export function probeTcp(endpoint: Endpoint, timeoutMs: number): Promise<{ readonly reachable: boolean; readonly error?: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: endpoint.address, port: endpoint.port, family: endpoint.family });
    const done = (result: { reachable: boolean; error?: string }): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ reachable: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => done({ reachable: true }));
    socket.once('error', (error: NodeJS.ErrnoException) => done({ reachable: false, error: error.code ?? error.message }));
  });
}

/**
 * The daemon's admin socket: a unix stream socket, mode 0600 (owner only; root can always
 * connect), one JSON request per line and one JSON response per line. A socket file left by a
 * daemon that died is removed; one that a running daemon answers on is refused.
 */
import { chmodSync, existsSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import { TproxyError } from '../core/errors.js';

/** A request or response line longer than this closes the connection. */
export const MAX_LINE_BYTES = 64 * 1024;
const IDLE_MS = 30_000;
/** Connections served at once; more are closed as soon as accepted (the descriptor budget holds this many). */
export const ADMIN_MAX_CONNECTIONS = 16;

export interface AdminEndpoint {
  readonly path: string;
  close(): Promise<void>;
}

export interface AdminSocketHooks {
  /** A socket file nobody answered on was removed. */
  readonly onStale: (path: string) => void;
  readonly onError: (error: Error) => void;
}

type Probe = { readonly state: 'absent' | 'stale' } | { readonly state: 'live'; readonly firstLine?: string };

/** Whether something answers on the socket at `path`; `hello` is sent and the first line read. */
async function probe(path: string, hello: string, timeoutMs: number): Promise<Probe> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' };
    throw error;
  }
  if (!stat.isSocket()) throw new TproxyError('ERR_CONFLICT', `the admin socket path ${path} exists and is not a socket: remove it or choose another --admin-socket`, { path });
  try {
    const firstLine = await request(path, hello, timeoutMs);
    return { state: 'live', firstLine };
  } catch (error) {
    const errno = (error as TproxyError).details?.errno;
    if (errno === 'ECONNREFUSED') return { state: 'stale' };
    if (errno === 'ENOENT') return { state: 'absent' };
    if (errno === 'EACCES' || errno === 'EPERM') throw new TproxyError('ERR_PRIVILEGE', `the admin socket ${path} exists and belongs to another user: choose another --admin-socket`, { path, errno });
    // It accepted but did not answer in time: something lives there.
    return { state: 'live' };
  }
}

/**
 * Listen on `path`. `hello` is the request sent to an existing socket to tell a live daemon from
 * a stale file; `describeLive` turns its answer into the reason for refusing.
 */
export async function serveAdminSocket(path: string, handle: (line: string) => Promise<string>, hooks: AdminSocketHooks, hello: string, describeLive: (firstLine: string | undefined) => string, maxConnections = ADMIN_MAX_CONNECTIONS): Promise<AdminEndpoint> {
  const found = await probe(path, hello, 1000);
  if (found.state === 'live') throw new TproxyError('ERR_CONFLICT', `${describeLive(found.firstLine)} on the admin socket ${path}: stop it first, or give this daemon another --admin-socket`, { path });
  if (found.state === 'stale') {
    unlinkSync(path);
    hooks.onStale(path);
  }
  const connections = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    socket.setEncoding('utf8');
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    socket.on('error', () => undefined);
    let buffered = '';
    let queue = Promise.resolve();
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_LINE_BYTES) {
        socket.destroy();
        return;
      }
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim() === '') continue;
        queue = queue.then(async () => {
          const answer = await handle(line);
          if (!socket.destroyed) socket.write(`${answer}\n`);
        });
      }
    });
  });
  server.on('error', hooks.onError);
  server.maxConnections = maxConnections;
  // Created owner-only: the mode is right from the first moment, not chmod()ed after a window.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    // libuv reports a missing directory as EACCES too.
    const hint = !existsSync(dirname(path)) ? `its directory ${dirname(path)} does not exist` : errno === 'EACCES' ? 'this user may not create files in that directory (systemd: RuntimeDirectory=)' : '';
    throw new TproxyError(errno === 'EACCES' && hint.startsWith('this user') ? 'ERR_PRIVILEGE' : errno === 'EADDRINUSE' ? 'ERR_ADDRESS_IN_USE' : 'ERR_SYSCALL', `admin socket ${path}: ${errno ?? (error as Error).message}${hint ? `: ${hint}` : ''}`, { path, call: 'bind', errno });
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  const inode = statSync(path).ino;
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => {
          try {
            // Only our own socket file: another daemon may have taken the path over meanwhile.
            if (statSync(path).ino === inode) unlinkSync(path);
          } catch {
            // already gone
          }
          resolve();
        });
      }),
  };
}

/** Send one request line to the socket at `path`; the first line of the answer. */
export function request(path: string, line: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    socket.setEncoding('utf8');
    let buffered = '';
    const fail = (error: TproxyError): void => {
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new TproxyError('ERR_TIMEOUT', `the daemon on ${path} did not answer within ${timeoutMs} ms`, { path })), timeoutMs);
    socket.once('connect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        socket.end();
        resolve(buffered.slice(0, newline));
      } else if (buffered.length > 64 * MAX_LINE_BYTES) {
        clearTimeout(timer);
        fail(new TproxyError('ERR_COMMAND_FAILED', `the answer on ${path} is too long`, { path }));
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const errno = error.code;
      const why =
        errno === 'ENOENT'
          ? 'no such socket: is tproxy run started with --admin-socket at this path?'
          : errno === 'ECONNREFUSED'
            ? 'nothing listens there (a daemon that died left the file)'
            : errno === 'EACCES' || errno === 'EPERM'
              ? 'permission denied: the socket is owner-only, run as the daemon\'s user or root'
              : (errno ?? error.message);
      fail(new TproxyError(errno === 'EACCES' || errno === 'EPERM' ? 'ERR_PRIVILEGE' : 'ERR_NOT_RUNNING', `no daemon answers on ${path}: ${why}`, { path, errno }));
    });
    socket.once('end', () => {
      if (buffered.indexOf('\n') < 0) {
        clearTimeout(timer);
        fail(new TproxyError('ERR_COMMAND_FAILED', `the daemon on ${path} closed the connection without an answer`, { path }));
      }
    });
  });
}

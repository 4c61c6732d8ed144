/**
 * Finding the tproxy daemon that runs in a network namespace, to ask it what it runs with.
 *
 * Unix sockets belong to the network namespace they were created in, and `ss -x` lists only those
 * of its own namespace, with their processes. Asked, in this order, until one answers as tproxy:
 *   1. the default admin socket (/run/tproxy/admin.sock), when it is listed in this namespace;
 *   2. the admin sockets of the process recorded as the owner of our rules;
 *   3. those of processes holding an IP_TRANSPARENT socket here, and of their parents (the TCP
 *      workers hold the listeners, the daemon the admin socket).
 * Only those processes' sockets are asked (a `ping` line first), never any other program's.
 */
import { parseSsSockets } from '../core/model/ss.js';
import type { CommandRunner } from '../sys/exec.js';
import { isTproxyError } from '../core/errors.js';
import { resultOf, type DaemonConfig, type PingResult } from './admin-protocol.js';
import { request } from '../sys/admin-socket.js';
import { fetchConfig } from './operations.js';

export const DEFAULT_ADMIN_SOCKET = '/run/tproxy/admin.sock';

/** Candidates asked at most (each costs a connect and a line). */
const MAX_CANDIDATES = 16;

export interface UnixListener {
  readonly path: string;
  readonly pids: readonly number[];
}

/** `ss -H -x -l -p`: listening unix stream sockets bound to a path, with their processes. Pure. */
export function parseUnixListeners(text: string): UnixListener[] {
  const out: UnixListener[] = [];
  for (const line of text.split('\n')) {
    const m = /^u_str\s+LISTEN\s+\d+\s+\d+\s+(\/\S*)\s+\d+\s+\*\s+\d+(.*)$/.exec(line.trim());
    if (!m) continue;
    out.push({ path: m[1]!, pids: [...m[2]!.matchAll(/pid=(\d+)/g)].map((p) => Number(p[1])) });
  }
  return out;
}

/** The admin sockets worth asking, in the order of the header. Pure. */
export function adminCandidates(listeners: readonly UnixListener[], owner: number | undefined, transparentPids: readonly number[], parents: ReadonlyMap<number, number>, defaultPath = DEFAULT_ADMIN_SOCKET): string[] {
  const proxies = new Set([...transparentPids, ...transparentPids.map((p) => parents.get(p)).filter((p): p is number => p !== undefined && p > 1)]);
  const ordered = [
    ...listeners.filter((l) => l.path === defaultPath),
    ...listeners.filter((l) => owner !== undefined && l.pids.includes(owner)),
    ...listeners.filter((l) => l.pids.some((p) => proxies.has(p))),
  ];
  return [...new Set(ordered.map((l) => l.path))].slice(0, MAX_CANDIDATES);
}

export interface FoundDaemon {
  readonly socket: string;
  readonly config: DaemonConfig;
}

async function text(runner: CommandRunner, argv: string[]): Promise<string> {
  try {
    const r = await runner.run(argv, { check: false, timeoutMs: 10_000 });
    return r.stdout;
  } catch {
    return '';
  }
}

/** Ask `path` whether tproxy answers there; its configuration if so. */
async function ask(path: string): Promise<DaemonConfig | undefined> {
  try {
    resultOf<PingResult>(await request(path, JSON.stringify({ id: 0, method: 'ping' }), 2_000));
    return await fetchConfig(path);
  } catch (error) {
    if (isTproxyError(error)) return undefined;
    throw error;
  }
}

/**
 * The daemon running in `runner`'s network namespace, or undefined when none answers. `owner` is
 * the pid recorded with our rules, when there are any.
 */
export async function discoverDaemon(runner: CommandRunner, owner?: number, defaultPath = DEFAULT_ADMIN_SOCKET): Promise<FoundDaemon | undefined> {
  const [unix, inet] = await Promise.all([text(runner, ['ss', '-H', '-x', '-l', '-p']), text(runner, ['ss', '-H', '-O', '-t', '-u', '-l', '-n', '-p', '--inet-sockopt'])]);
  const listeners = parseUnixListeners(unix);
  if (listeners.length === 0) return undefined;
  const transparentPids = [...new Set(parseSsSockets(inet).filter((s) => s.transparent).map((s) => Number(/\[(\d+)\]$/.exec(s.process ?? '')?.[1])).filter((p) => Number.isInteger(p) && p > 0))].slice(0, 64);
  const parents = new Map<number, number>();
  if (transparentPids.length > 0) {
    const status = await text(runner, ['grep', '-s', '-H', '^PPid:', ...transparentPids.map((p) => `/proc/${p}/status`)]);
    for (const m of status.matchAll(/^\/proc\/(\d+)\/status:PPid:\s*(\d+)$/gm)) parents.set(Number(m[1]), Number(m[2]));
  }
  for (const socket of adminCandidates(listeners, owner, transparentPids, parents, defaultPath)) {
    const config = await ask(socket);
    if (config) return { socket, config };
  }
  return undefined;
}

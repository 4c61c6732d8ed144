/** A lab with `tproxy run` on the router and test peers on the server, for data-plane tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonLines } from '../../src/lab/json-lines.js';
import { Lab, type SpawnedProcess } from '../../src/lab/topology.js';
import { startEchoServer } from './lab-flows.js';
import { BIN, TCP_PEER } from './paths.js';

export type LogLine = { type: string; [key: string]: unknown };

export interface ProxyLab {
  readonly lab: Lab;
  readonly proxy: SpawnedProcess;
  readonly logs: JsonLines<LogLine>;
  readonly serverLog: JsonLines<{ event: string; how?: string; released?: number; peer?: { address: string; port: number } }>;
  /** Run a tcp-peer client scenario in the client namespace; its JSON result. */
  client<T = Record<string, unknown>>(scenario: string, host: string, port: number, arg?: number, arg2?: number): Promise<T>;
}

export async function startProxyLab(runArgs: readonly string[], serverPort = 81, wrapper: readonly string[] = []): Promise<ProxyLab> {
  const lab = await Lab.create();
  try {
    const server = lab.spawn('server', [process.execPath, TCP_PEER, 'server', '--port', `${serverPort}`]);
    const serverLog = new JsonLines<{ event: string; how?: string; released?: number; peer?: { address: string; port: number } }>(server.child.stdout!);
    await serverLog.waitFor((l) => l.event === 'ready', 10_000, 'tcp test server ready');
    const proxy = lab.spawn('router', [...wrapper, process.execPath, BIN, 'run', ...runArgs, '--log-level', 'debug', '--log-format', 'json']);
    const logs = new JsonLines<LogLine>(proxy.child.stderr!);
    await logs.waitFor((l) => l.type === 'ready', 60_000, 'tproxy run ready');
    return {
      lab,
      proxy,
      logs,
      serverLog,
      async client<T>(scenario: string, host: string, port: number, arg = 0, arg2 = 0): Promise<T> {
        const out = await lab.run('client', [process.execPath, TCP_PEER, 'client', scenario, host, `${port}`, `${arg}`, `${arg2}`], { timeoutMs: 90_000 });
        return JSON.parse(out.stdout.trim().split('\n').pop() ?? '{}') as T;
      },
    };
  } catch (error) {
    await lab.destroy();
    throw error;
  }
}

/** A proxy lab whose daemon answers on an admin socket in a temporary folder; `close` removes the lab and the folder. */
export interface AdminProxyLab extends ProxyLab {
  readonly socket: string;
  close(): Promise<void>;
}

/**
 * startProxyLab with `--admin-socket` in a new temporary folder (`tproxy-NAME-`), and the UDP echo
 * server on the server (port 80) when `echo`. Nothing is left behind when it fails.
 */
export async function startAdminProxyLab(name: string, runArgs: readonly string[], options: { readonly echo?: boolean } = {}): Promise<AdminProxyLab> {
  const dir = mkdtempSync(join(tmpdir(), `tproxy-${name}-`));
  const socket = join(dir, 'admin.sock');
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  let p: ProxyLab;
  try {
    p = await startProxyLab([...runArgs, '--admin-socket', socket]);
  } catch (error) {
    removeDir();
    throw error;
  }
  const close = async (): Promise<void> => {
    await p.lab.destroy();
    removeDir();
  };
  try {
    if (options.echo) await startEchoServer(p.lab);
  } catch (error) {
    await close();
    throw error;
  }
  return { ...p, socket, close };
}

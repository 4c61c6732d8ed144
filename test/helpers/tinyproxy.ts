/** tinyproxy (Debian package tinyproxy) as an HTTP CONNECT proxy in a lab namespace. */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostName, Lab } from '../../src/lab/topology.js';
import { startDaemon, type Daemon } from './daemon.js';

export interface TinyproxyOptions {
  readonly address: string;
  readonly port: number;
  /** The ports CONNECT may reach. */
  readonly connectPorts: readonly number[];
  /** Require Basic credentials (Proxy-Authorization); absent: none. */
  readonly user?: { readonly name: string; readonly password: string };
}

export async function startTinyproxy(lab: Lab, host: HostName, dir: string, options: TinyproxyOptions): Promise<Daemon> {
  const base = join(dir, `tinyproxy-${options.port}`);
  // tinyproxy drops to nobody before it writes its log.
  writeFileSync(`${base}.log`, '');
  chmodSync(`${base}.log`, 0o666);
  chmodSync(dir, 0o755);
  writeFileSync(
    `${base}.conf`,
    [
      'User nobody',
      'Group nogroup',
      `Port ${options.port}`,
      `Listen ${options.address}`,
      'Timeout 30',
      `LogFile "${base}.log"`,
      'LogLevel Connect',
      `PidFile "${base}.pid"`,
      'MaxClients 20',
      ...options.connectPorts.map((p) => `ConnectPort ${p}`),
      ...(options.user ? [`BasicAuth ${options.user.name} ${options.user.password}`] : []),
      '',
    ].join('\n'),
  );
  return startDaemon(lab, host, ['tinyproxy', '-d', '-c', `${base}.conf`], [options.port], `${base}.log`);
}

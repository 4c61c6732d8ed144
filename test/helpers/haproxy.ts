/**
 * HAProxy (Debian package haproxy) in a lab namespace as a PROXY protocol receiver: an HTTP frontend
 * on `bind ... accept-proxy` (v1 and v2) that answers itself and logs, to stdout, the client
 * address and port the header named ("%ci:%cp" is the PROXY header's source once accept-proxy
 * took it).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostName, Lab } from '../../src/lab/topology.js';
import { startDaemon, type Daemon } from './daemon.js';

/** `address`: one address, or one per family (IPv4 and IPv6). */
export async function startHaproxyAcceptProxy(lab: Lab, host: HostName, dir: string, address: string | readonly string[], port: number): Promise<Daemon> {
  const binds = (typeof address === 'string' ? [address] : address).map((a) => `  bind ${a.includes(':') ? `[${a}]` : a}:${port} accept-proxy`).join('\n');
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(
    file,
    `global
  log stdout format raw local0
  pidfile ${join(dir, 'haproxy.pid')}
defaults
  mode http
  log global
  timeout connect 5s
  timeout client 20s
  timeout server 20s
frontend pp
${binds}
  log-format "%ci:%cp"
  http-request return status 200 content-type text/plain string "haproxy\\n"
`,
  );
  return startDaemon(lab, host, ['haproxy', '-db', '-f', file], [port]);
}

/**
 * nginx (Debian package nginx-light) in a lab namespace, one process (no master), serving:
 *   plain     HTTP that answers "<server port> <Host>"
 *   proxy     HTTP behind `listen ... proxy_protocol` (v1 and v2), its access log
 *             "$proxy_protocol_addr:$proxy_protocol_port" per request
 *   tls       HTTPS with a throwaway self-signed certificate (made here with openssl), answering
 *             "tls <SNI>"
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostName, Lab } from '../../src/lab/topology.js';
import { startDaemon, type Daemon } from './daemon.js';

export interface NginxPorts {
  readonly plain: number;
  readonly proxy: number;
  readonly tls: number;
}

/** `address`: one address, or one per family (IPv4 and IPv6), each listened on by every server. */
export async function startNginx(lab: Lab, host: HostName, dir: string, address: string | readonly string[], ports: NginxPorts): Promise<Daemon> {
  const listen = (port: number, more = ''): string => (typeof address === 'string' ? [address] : address).map((a) => `listen ${a.includes(':') ? `[${a}]` : a}:${port}${more};`).join(' ');
  const root = join(dir, 'nginx');
  mkdirSync(join(root, 'tmp'), { recursive: true });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test.example', '-keyout', join(root, 'key.pem'), '-out', join(root, 'cert.pem')], { stdio: 'ignore' });
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${root}/tmp/${t};`);
  writeFileSync(
    join(root, 'nginx.conf'),
    [
      'daemon off;',
      'master_process off;',
      `pid ${root}/nginx.pid;`,
      `error_log ${root}/error.log info;`,
      'events { worker_connections 64; }',
      'http {',
      ...temp,
      `  access_log ${root}/access.log;`,
      "  log_format pp '$proxy_protocol_addr:$proxy_protocol_port';",
      `  server { ${listen(ports.plain)} location / { return 200 "$server_port $host\\n"; } }`,
      `  server { ${listen(ports.proxy, ' proxy_protocol')} access_log ${root}/proxy.log pp; location / { return 200 "proxied\\n"; } }`,
      `  server { ${listen(ports.tls, ' ssl')} ssl_certificate ${root}/cert.pem; ssl_certificate_key ${root}/key.pem; location / { return 200 "tls $ssl_server_name\\n"; } }`,
      '}',
      '',
    ].join('\n'),
  );
  return startDaemon(lab, host, ['nginx', '-p', root, '-e', `${root}/error.log`, '-c', `${root}/nginx.conf`], [ports.plain, ports.proxy, ports.tls], `${root}/proxy.log`);
}

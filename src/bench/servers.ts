/** Benchmark servers in the lab's server namespace: iperf3, nginx, and danted for UDP through SOCKS5. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_ADDRESSES, type HostName, type Lab } from '../lab/topology.js';

export const IPERF_PORT = 5201;
export const HTTP_PORT = 80;

/** Wait until something listens on TCP `port` in `host`'s namespace. */
export async function waitForPort(lab: Lab, port: number, timeoutMs: number, host: HostName = 'server'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const out = await lab.run(host, ['ss', '-Hltn', `sport = :${port}`], { check: false });
    if (out.stdout.trim()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listened on port ${port} in the ${host} namespace within ${timeoutMs} ms`);
}

/** iperf3 and nginx in the server namespace; nginx's prefix (config, pid, temp paths) goes under `dir`, which the caller removes. */
export async function startServers(lab: Lab, dir: string): Promise<void> {
  lab.spawn('server', ['iperf3', '-s', '-p', `${IPERF_PORT}`]);
  const prefix = join(dir, 'nginx');
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const S = LAB_ADDRESSES.server;
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 65536;
events { worker_connections 32768; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 1000000;
  server {
    listen ${S.ipv4}:${HTTP_PORT} backlog=4096;
    listen [${S.ipv6}]:${HTTP_PORT} backlog=4096;
    location / { return 200 "ok\\n"; }
  }
}
`,
  );
  lab.spawn('server', ['nginx', '-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;']);
  await waitForPort(lab, IPERF_PORT, 10_000);
  await waitForPort(lab, HTTP_PORT, 10_000);
}

export const SOCKS_PORT = 1080;

/**
 * Dante's danted on the server's IPv4 address, no authentication, UDP ASSOCIATE allowed, logging
 * errors only (a line per datagram would measure the log). Its files go in `dir`.
 */
export async function startDanted(lab: Lab, dir: string): Promise<void> {
  const address = LAB_ADDRESSES.server.ipv4;
  const conf = join(dir, 'danted.conf');
  writeFileSync(
    conf,
    [
      `logoutput: ${join(dir, 'danted.log')}`,
      `internal: ${address} port = ${SOCKS_PORT}`,
      `external: ${address}`,
      'clientmethod: none',
      'socksmethod: none',
      'user.privileged: root',
      'user.unprivileged: nobody',
      'client pass {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  log: error\n}',
      'socks pass {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  command: udpassociate udpreply\n  log: error\n}',
      '',
    ].join('\n'),
  );
  lab.spawn('server', ['danted', '-f', conf, '-p', join(dir, 'danted.pid'), '-N', '1']);
  await waitForPort(lab, SOCKS_PORT, 10_000);
}

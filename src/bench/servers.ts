/** Benchmark servers in the lab's server namespace: iperf3 and nginx. */
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

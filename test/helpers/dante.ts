/**
 * Dante's SOCKS5 server (danted, Debian package dante-server) in a lab namespace, logging every
 * CONNECT with its destination. With `user`, it requires RFC 1929 username/password: danted checks
 * those against the system's password database, so the daemon runs in its own mount namespace where
 * copies of /etc/passwd and /etc/shadow with one extra user are bind-mounted over the real ones: no
 * user is ever added to the machine, and the mounts vanish with the process.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostName, Lab } from '../../src/lab/topology.js';
import { startDaemon, type Daemon } from './daemon.js';

export interface DanteOptions {
  /** Where it listens and connects from: one address, or one per family (IPv4 and IPv6). */
  readonly address: string | readonly string[];
  readonly port: number;
  /** Require this user and password (RFC 1929); absent: no authentication. */
  readonly user?: { readonly name: string; readonly password: string };
  /**
   * Also allow UDP ASSOCIATE (and the replies to it), logging each association's destinations and
   * every datagram relayed (`iooperation`), so a test can see where its datagrams went.
   */
  readonly udp?: boolean;
}

export async function startDante(lab: Lab, host: HostName, dir: string, options: DanteOptions): Promise<Daemon> {
  const base = join(dir, `danted-${options.port}`);
  const method = options.user ? 'username' : 'none';
  const addresses = typeof options.address === 'string' ? [options.address] : options.address;
  // Rules per family: 0.0.0.0/0 matches IPv4 only.
  const nets = addresses.some((a) => a.includes(':')) ? ['0.0.0.0/0', '::/0'] : ['0.0.0.0/0'];
  writeFileSync(
    `${base}.conf`,
    [
      `logoutput: ${base}.log`,
      ...addresses.map((a) => `internal: ${a} port = ${options.port}`),
      ...addresses.map((a) => `external: ${a}`),
      'clientmethod: none',
      `socksmethod: ${method}`,
      'user.privileged: root',
      'user.unprivileged: nobody',
      // A keyword's values run to the end of its line (command: connect log: ... would read log as a command).
      ...nets.map((n) => `client pass {\n  from: ${n} to: ${n}\n  log: connect error\n}`),
      ...nets.flatMap((from) =>
        nets.flatMap((to) =>
          options.udp
            ? [
                `socks pass {\n  from: ${from} to: ${to}\n  command: connect udpassociate\n  log: connect disconnect error iooperation\n}`,
                `socks pass {\n  from: ${from} to: ${to}\n  command: udpreply\n  log: connect disconnect error iooperation\n}`,
              ]
            : [`socks pass {\n  from: ${from} to: ${to}\n  command: connect\n  log: connect error\n}`],
        ),
      ),
      '',
    ].join('\n'),
  );
  const danted = ['danted', '-f', `${base}.conf`, '-p', `${base}.pid`, '-N', '1'];
  if (!options.user) return startDaemon(lab, host, danted, [options.port], `${base}.log`);
  const { name, password } = options.user;
  const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: password }).toString().trim();
  writeFileSync(`${base}.passwd`, `${readFileSync('/etc/passwd', 'utf8')}${name}:x:65500:65534::/nonexistent:/usr/sbin/nologin\n`);
  writeFileSync(`${base}.shadow`, `${readFileSync('/etc/shadow', 'utf8')}${name}:${hash}:20000:0:99999:7:::\n`, { mode: 0o600 });
  const script = `mount --bind "$1.passwd" /etc/passwd && mount --bind "$1.shadow" /etc/shadow && shift && exec "$@"`;
  return startDaemon(lab, host, ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', base, ...danted], [options.port], `${base}.log`);
}

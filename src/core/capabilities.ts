/**
 * Linux capabilities of a process, from the Cap* lines of /proc/PID/status, and what `tproxy run`
 * needs of them. Pure.
 *
 * Needed: CAP_NET_ADMIN (IP_TRANSPARENT, SO_MARK, SO_RCVBUFFORCE; and nft / ip, which run as child
 * processes and keep a capability across execve only when it is ambient, unless the process is
 * root). CAP_NET_BIND_SERVICE when a port below net.ipv4.ip_unprivileged_port_start is bound: a
 * listen port, and for UDP every intercepted destination port (each session's reply socket binds
 * the original destination's address and port, e.g. :53 for DNS). Optional: CAP_NET_RAW (the UDP
 * raw reply fallback), CAP_SYS_RESOURCE (the splice engine's pipes keep growing past
 * fs/pipe-user-pages-soft: packaging/tproxy.service grants it).
 */
import { TproxyError } from './errors.js';
import type { PortRange } from './rules/config.js';

export const CAPABILITY_BITS = { net_bind_service: 10, net_admin: 12, net_raw: 13, sys_resource: 24 } as const;
export type CapabilityName = keyof typeof CAPABILITY_BITS;

export interface ProcessPrivileges {
  readonly uid: number;
  readonly effective: bigint;
  readonly ambient: bigint;
}

/** The effective and ambient sets of a /proc/PID/status text (absent lines read as empty). */
export function parseCapabilities(statusText: string): { effective: bigint; ambient: bigint } {
  const set = (key: string): bigint => {
    const m = new RegExp(`^${key}:\\s*([0-9a-f]+)$`, 'm').exec(statusText);
    return m ? BigInt(`0x${m[1]}`) : 0n;
  };
  return { effective: set('CapEff'), ambient: set('CapAmb') };
}

export function has(set: bigint, name: CapabilityName): boolean {
  return (set & (1n << BigInt(CAPABILITY_BITS[name]))) !== 0n;
}

/** Names of the capabilities tproxy cares about that are in `set`. */
export function relevantCapabilities(set: bigint): CapabilityName[] {
  return (Object.keys(CAPABILITY_BITS) as CapabilityName[]).filter((name) => has(set, name));
}

const GRANT = 'run as root, or grant it: systemd AmbientCapabilities=CAP_NET_ADMIN (see packaging/tproxy.service), or setpriv --inh-caps +net_admin --ambient-caps +net_admin';

/** The ports the daemon will bind, against the host's limit for binding without the capability. */
export interface PortNeeds {
  readonly listenPort: number;
  /** Intercepted UDP destination ports: reply sockets bind them. */
  readonly udpPorts: readonly PortRange[];
  /** net.ipv4.ip_unprivileged_port_start (1024 unless changed). */
  readonly unprivilegedPortStart: number;
}

const BIND_GRANT = 'grant it too: systemd AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE, or setpriv --inh-caps +net_admin,+net_bind_service --ambient-caps +net_admin,+net_bind_service';

/**
 * Refuse to start without what the daemon needs, before anything is opened or applied.
 * `manageRules`: nft and ip will run as child processes.
 */
export function checkRunPrivileges(p: ProcessPrivileges, manageRules: boolean, ports?: PortNeeds): void {
  if (!has(p.effective, 'net_admin')) {
    throw new TproxyError('ERR_PRIVILEGE', `tproxy run needs CAP_NET_ADMIN (transparent sockets, packet marks, kernel rules): ${GRANT}`, { uid: p.uid });
  }
  if (manageRules && p.uid !== 0 && !has(p.ambient, 'net_admin')) {
    throw new TproxyError(
      'ERR_PRIVILEGE',
      `CAP_NET_ADMIN is effective but not ambient, so nft and ip (child processes) would run without it: make it ambient (systemd AmbientCapabilities=CAP_NET_ADMIN, or setpriv --inh-caps +net_admin --ambient-caps +net_admin), or use --no-rules and manage the rules elsewhere`,
      { uid: p.uid },
    );
  }
  if (ports && !has(p.effective, 'net_bind_service')) {
    const start = ports.unprivilegedPortStart;
    if (ports.listenPort < start) throw new TproxyError('ERR_PRIVILEGE', `listen port ${ports.listenPort} is below ${start} (net.ipv4.ip_unprivileged_port_start): binding it needs CAP_NET_BIND_SERVICE: ${BIND_GRANT}; or listen on a higher port`, { uid: p.uid });
    const low = ports.udpPorts.filter((r) => r.from < start);
    if (low.length > 0) {
      const text = low.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(',');
      throw new TproxyError('ERR_PRIVILEGE', `intercepting udp:${text} needs CAP_NET_BIND_SERVICE: each UDP session's reply socket binds the original destination's port, which is below ${start}: ${BIND_GRANT}`, { uid: p.uid });
    }
  }
}

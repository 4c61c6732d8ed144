/**
 * Privileges: the proxy process needs CAP_NET_ADMIN (IP_TRANSPARENT, SO_MARK) and, for the UDP
 * reply fallback, CAP_NET_RAW; doctor itself needs CAP_NET_ADMIN to read every rule and socket.
 */
import { finding, type Finding } from './finding.js';
import type { DoctorInput } from './input.js';
import { proxyListeners } from './sockets.js';

export const CAP_NET_ADMIN = 12;
export const CAP_NET_RAW = 13;

export function hasCapability(capEff: string, cap: number): boolean {
  try {
    return ((BigInt(`0x${capEff}`) >> BigInt(cap)) & 1n) === 1n;
  } catch {
    return false;
  }
}

export function pidOf(process: string | undefined): string | undefined {
  return process ? /\[(\d+)\]$/.exec(process)?.[1] : undefined;
}

export function checkPrivileges(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const self = input.snapshot.host?.self;
  if (self) {
    const admin = hasCapability(self.capEff, CAP_NET_ADMIN);
    out.push(
      admin
        ? finding('privileges', 'privileges.inspect', 'pass', `doctor runs with CAP_NET_ADMIN (uid ${self.uid})`, 'every rule and socket can be read')
        : finding('privileges', 'privileges.inspect', 'warn', `doctor runs without CAP_NET_ADMIN (uid ${self.uid}, CapEff ${self.capEff})`, 'rules, probes and other users\' sockets cannot all be read: the report is incomplete', 'sudo tproxy doctor ...'),
    );
  }
  const processes = input.snapshot.host?.processes ?? {};
  const seen = new Set<string>();
  for (const socket of proxyListeners(input)) {
    const pid = pidOf(socket.process);
    if (!pid || seen.has(pid)) continue;
    seen.add(pid);
    const caps = processes[pid]?.capEff;
    if (caps === undefined) continue;
    if (!hasCapability(caps, CAP_NET_ADMIN)) {
      out.push(finding('privileges', 'privileges.proxy', 'fail', `${socket.process ?? pid} has no CAP_NET_ADMIN (CapEff ${caps})`, 'IP_TRANSPARENT and SO_MARK need CAP_NET_ADMIN: the proxy cannot accept intercepted flows or mark its upstream traffic', `setcap cap_net_admin,cap_net_raw+ep "$(readlink -f /proc/${pid}/exe)"  # or run it as root`));
      continue;
    }
    const udp = input.config.listeners.some((l) => l.intercept.some((s) => s.transport === 'udp'));
    if (udp && !hasCapability(caps, CAP_NET_RAW)) {
      out.push(finding('privileges', 'privileges.proxy', 'warn', `${socket.process ?? pid} has CAP_NET_ADMIN but not CAP_NET_RAW`, 'UDP replies whose source port is taken by a local service go out through a raw socket, which needs CAP_NET_RAW'));
    } else {
      out.push(finding('privileges', 'privileges.proxy', 'pass', `${socket.process ?? pid} has CAP_NET_ADMIN${udp ? ' and CAP_NET_RAW' : ''}`, 'the proxy may use IP_TRANSPARENT and SO_MARK'));
    }
  }
  return out;
}

/**
 * The socket table and the kernel's lookups over it: the established (4-tuple) lookup, the
 * listener lookup (exact address before wildcard), UDP's best-score lookup, and the TPROXY
 * lookup of nf_tproxy_ipv4.c / nf_tproxy_ipv6.c with its TIME_WAIT handling.
 */
import { formatIp, isAnyAddress, sameIp, unmapV4, type IpAddress } from '../net/address.js';
import { isPureSyn, type L4Proto, type Packet } from './packet.js';

export type SocketState = 'listen' | 'unconnected' | 'established' | 'syn-recv' | 'time-wait' | 'closing';

export interface SocketEndpoint {
  readonly addr: IpAddress;
  readonly port: number;
}

export interface SocketEntry {
  readonly l4proto: L4Proto;
  /** The socket's own family (an AF_INET6 socket may carry IPv4 traffic when not v6only). */
  readonly family: 4 | 6;
  readonly state: SocketState;
  readonly local: SocketEndpoint;
  /** The peer of a connected socket; undefined for listeners and unconnected UDP sockets. */
  readonly remote?: SocketEndpoint;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT (a TIME_WAIT socket's tw_transparent). */
  readonly transparent: boolean;
  /** How `transparent` is known: read from sock_diag, or inferred (TIME_WAIT reports no options). */
  readonly transparentSource?: 'sockopt' | 'inferred' | 'given';
  readonly v6only?: boolean;
  /** SO_BINDTODEVICE. */
  readonly boundDev?: string;
  readonly process?: string;
  readonly mark?: number;
}

export function describeSocket(s: SocketEntry): string {
  const ep = (e: SocketEndpoint): string => (e.addr.family === 6 ? `[${formatIp(e.addr)}]:${e.port}` : `${formatIp(e.addr)}:${e.port}`);
  const peer = s.remote ? ` peer ${ep(s.remote)}` : '';
  const proc = s.process ? ` (${s.process})` : '';
  return `${s.l4proto} ${s.state} ${ep(s.local)}${peer}${s.transparent ? ' transparent' : ''}${proc}`;
}

/** The socket's address as the packet's family sees it, or undefined when it cannot match. */
function addrFor(socket: SocketEntry, addr: IpAddress, packetFamily: 4 | 6): IpAddress | undefined {
  if (socket.family === packetFamily) return addr;
  if (socket.family === 6 && packetFamily === 4 && !socket.v6only) {
    if (isAnyAddress(addr)) return { family: 4, value: 0n };
    return unmapV4(addr);
  }
  return undefined;
}

function devOk(socket: SocketEntry, iif: string | undefined): boolean {
  return socket.boundDev === undefined || socket.boundDev === iif;
}

/** TCP: a socket (any state but listen) for exactly this 4-tuple, TIME_WAIT included. */
export function lookupEstablished(sockets: readonly SocketEntry[], packet: Packet): SocketEntry | undefined {
  return sockets.find((s) => {
    if (s.l4proto !== packet.l4proto || s.state === 'listen' || s.state === 'unconnected' || !s.remote) return false;
    const local = addrFor(s, s.local.addr, packet.family);
    const remote = addrFor(s, s.remote.addr, packet.family);
    return (
      local !== undefined && remote !== undefined && sameIp(local, packet.daddr) && s.local.port === packet.dport && sameIp(remote, packet.saddr) && s.remote.port === packet.sport && devOk(s, packet.iif)
    );
  });
}

/** TCP: the listener for addr:port; a socket bound to that address wins over a wildcard one. */
export function lookupListener(sockets: readonly SocketEntry[], packet: Packet, addr: IpAddress, port: number): SocketEntry | undefined {
  let best: SocketEntry | undefined;
  let bestScore = -1;
  for (const s of sockets) {
    if (s.l4proto !== 'tcp' || s.state !== 'listen' || s.local.port !== port || !devOk(s, packet.iif)) continue;
    const local = addrFor(s, s.local.addr, packet.family);
    if (!local) continue;
    let score: number;
    if (isAnyAddress(local)) score = 1;
    else if (sameIp(local, addr)) score = 2;
    else continue;
    if (s.family === packet.family) score += 0.5;
    if (s.boundDev !== undefined) score += 4;
    if (score > bestScore) [best, bestScore] = [s, score];
  }
  return best;
}

/** UDP: the best-scoring socket for (saddr, sport) -> (daddr, dport), as udp4_lib_lookup picks. */
export function lookupUdp(sockets: readonly SocketEntry[], packet: Packet, daddr: IpAddress, dport: number): SocketEntry | undefined {
  let best: SocketEntry | undefined;
  let bestScore = -1;
  for (const s of sockets) {
    if (s.l4proto !== 'udp' || s.local.port !== dport || !devOk(s, packet.iif)) continue;
    const local = addrFor(s, s.local.addr, packet.family);
    if (!local) continue;
    let score = s.family === packet.family ? 2 : 1;
    if (!isAnyAddress(local)) {
      if (!sameIp(local, daddr)) continue;
      score += 4;
    }
    if (s.remote) {
      const remote = addrFor(s, s.remote.addr, packet.family);
      if (!remote || !sameIp(remote, packet.saddr) || (s.remote.port !== 0 && s.remote.port !== packet.sport)) continue;
      score += 4;
    }
    if (s.boundDev !== undefined) score += 4;
    if (score > bestScore) [best, bestScore] = [s, score];
  }
  return best;
}

/** What the `socket` expression and ordinary delivery find: established first, then a listener. */
export function lookupSocket(sockets: readonly SocketEntry[], packet: Packet): SocketEntry | undefined {
  if (packet.l4proto === 'udp') return lookupUdp(sockets, packet, packet.daddr, packet.dport);
  return lookupEstablished(sockets, packet) ?? lookupListener(sockets, packet, packet.daddr, packet.dport);
}

export interface TproxyLookup {
  readonly socket?: SocketEntry;
  /** Human lines: what was looked for and what was found. */
  readonly considered: readonly string[];
  /** A TIME_WAIT socket that a new SYN retired in favour of the listener. */
  readonly retired?: SocketEntry;
}

/**
 * nf_tproxy_get_sock_v4/v6 as the tproxy expression and the TPROXY target call it: the
 * established lookup on the packet's own addresses; a TIME_WAIT socket gives way to a listener
 * on the redirect address for a pure SYN; otherwise the listener on the redirect address and port.
 * The caller checks that the socket is transparent.
 */
export function tproxyLookup(sockets: readonly SocketEntry[], packet: Packet, taddr: IpAddress, tport: number): TproxyLookup {
  const considered: string[] = [];
  const where = `${packet.family === 6 ? `[${formatIp(taddr)}]` : formatIp(taddr)}:${tport}`;
  let established: SocketEntry | undefined;
  if (packet.l4proto === 'udp') {
    const s = lookupUdp(sockets, packet, packet.daddr, packet.dport);
    if (s && s.remote && !isAnyAddress(s.local.addr)) established = s;
  } else {
    established = lookupEstablished(sockets, packet);
  }
  considered.push(established ? `established lookup: ${describeSocket(established)}` : 'established lookup: none');
  if (established && established.state === 'time-wait') {
    if (isPureSyn(packet)) {
      const listener = lookupListener(sockets, packet, taddr, tport);
      if (listener) {
        considered.push(`new SYN on a TIME_WAIT pair: TIME_WAIT socket retired, listener on ${where}: ${describeSocket(listener)}`);
        return { socket: listener, considered, retired: established };
      }
      considered.push(`new SYN on a TIME_WAIT pair: no listener on ${where}, the TIME_WAIT socket stays`);
    }
    return { socket: established, considered };
  }
  if (established) return { socket: established, considered };
  let listener: SocketEntry | undefined;
  if (packet.l4proto === 'udp') {
    const s = lookupUdp(sockets, packet, taddr, tport);
    if (s && !s.remote) listener = s;
  } else {
    listener = lookupListener(sockets, packet, taddr, tport);
  }
  considered.push(listener ? `listener on ${where}: ${describeSocket(listener)}` : `listener on ${where}: none`);
  return listener ? { socket: listener, considered } : { considered };
}

/**
 * Sockets from `ss -H -O -tuanpe --inet-sockopt` (one line per socket). sock_diag reports
 * IP_TRANSPARENT as `transparent` inside `inet-sockopt: ( ... )` (Linux 5.10+). TIME_WAIT sockets
 * report no options: their transparency is inferred later from whether the address is local.
 */
import { parseIp, type IpAddress } from '../net/address.js';
import type { SocketEntry, SocketState } from './sockets.js';

const STATES: Readonly<Record<string, SocketState>> = {
  LISTEN: 'listen',
  UNCONN: 'unconnected',
  ESTAB: 'established',
  'SYN-RECV': 'syn-recv',
  'SYN-SENT': 'established',
  'TIME-WAIT': 'time-wait',
  'FIN-WAIT-1': 'closing',
  'FIN-WAIT-2': 'closing',
  'CLOSE-WAIT': 'closing',
  'LAST-ACK': 'closing',
  CLOSING: 'closing',
};

interface ParsedAddress {
  readonly addr: IpAddress;
  readonly port: number;
  readonly dev?: string;
  readonly wildcardPort: boolean;
}

export function parseSsAddress(text: string): ParsedAddress | undefined {
  const m = /^(\[[^\]]*\]|\*|[^\s%[\]]+?)(?:%([^:\s]+))?:(\d+|\*)$/.exec(text);
  if (!m) return undefined;
  const host = m[1]!;
  let addr: IpAddress;
  try {
    addr = host === '*' ? { family: 6, value: 0n } : parseIp(host.replace(/^\[|\]$/g, ''));
  } catch {
    return undefined;
  }
  return { addr, port: m[3] === '*' ? 0 : Number(m[3]), ...(m[2] ? { dev: m[2] } : {}), wildcardPort: m[3] === '*' };
}

/** One socket per line; lines that are not sockets (headers, errors) are skipped. */
export function parseSsSockets(text: string): SocketEntry[] {
  const sockets: SocketEntry[] = [];
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    const [netid, stateWord, , , localText, peerText] = words;
    if ((netid !== 'tcp' && netid !== 'udp') || !stateWord || !localText || !peerText) continue;
    const local = parseSsAddress(localText);
    const peer = parseSsAddress(peerText);
    if (!local || !peer) continue;
    let state = STATES[stateWord] ?? 'closing';
    if (/timer:\(timewait/.test(line)) state = 'time-wait';
    if (netid === 'udp' && state === 'established' && peer.wildcardPort) state = 'unconnected';
    const sockopt = /inet-sockopt: \(([^)]*)\)/.exec(line);
    const transparent = sockopt ? sockopt[1]!.split(/\s+/).includes('transparent') : false;
    const v6only = /\bv6only:1\b/.test(line);
    const mark = /\bfwmark:(0x[0-9a-f]+|\d+)/i.exec(line);
    const proc = /users:\(\("([^"]*)",pid=(\d+)/.exec(line);
    const connected = state !== 'listen' && state !== 'unconnected' && !peer.wildcardPort;
    sockets.push({
      l4proto: netid,
      family: local.addr.family,
      state,
      local: { addr: local.addr, port: local.port },
      ...(connected ? { remote: { addr: peer.addr, port: peer.port } } : {}),
      transparent,
      transparentSource: sockopt ? 'sockopt' : state === 'time-wait' ? 'inferred' : 'sockopt',
      ...(local.addr.family === 6 ? { v6only } : {}),
      ...(local.dev ? { boundDev: local.dev } : {}),
      ...(proc ? { process: `${proc[1]!}[${proc[2]!}]` } : {}),
      ...(mark ? { mark: Number(mark[1]) } : {}),
    });
  }
  return sockets;
}

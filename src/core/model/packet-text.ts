/**
 * The one-line packet notation of `tproxy explain`:
 *
 *   tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 syn
 *   udp [2001:db8:1::10]:5353 -> [2001:db8:2::20]:53 iif eth0 mark 0x1 dscp 10 ttl 64
 *   tcp 198.51.100.1:40000 -> 203.0.113.20:80 local syn      (sent by a local process)
 *
 * Words after the addresses, in any order: iif NAME, local, mark N, dscp N|NAME, ttl N,
 * ct new|established|related|invalid, and TCP flags (syn, ack, fin, rst, psh, urg; `syn,ack`).
 * Without flags a TCP packet is a SYN. ct state defaults to new for a SYN or UDP, established for
 * other TCP packets.
 */
import { TproxyError } from '../errors.js';
import { quoted } from '../quote.js';
import { parseIp } from '../net/address.js';
import { DSCP_NAMES } from '../net/dscp.js';
import { TCP_FLAGS, type CtState, type Packet } from './packet.js';

export const PACKET_FORM = 'tcp|udp SADDR:SPORT -> DADDR:DPORT [iif NAME | local] [syn|ack|fin|rst|psh ...] [mark N] [dscp N] [ttl N] [ct STATE] (IPv6 in brackets: [2001:db8::1]:80)';

export interface ParsedPacket {
  readonly packet: Packet;
  readonly origin: 'wire' | 'local';
}

function invalid(text: string, why: string): TproxyError {
  return new TproxyError('ERR_INVALID_ARGUMENT', `invalid packet ${quoted(text)}: ${why}. Expected: ${PACKET_FORM}`, { packet: quoted(text) });
}

function endpoint(text: string, word: string): { addr: ReturnType<typeof parseIp>; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(word) ?? /^([^:[\]]+):(\d+)$/.exec(word);
  if (!m) throw invalid(text, `${quoted(word)} is not ADDRESS:PORT`);
  const port = Number(m[2]);
  if (port < 0 || port > 65535) throw invalid(text, `port ${port} is out of range`);
  try {
    return { addr: parseIp(m[1]!), port };
  } catch {
    throw invalid(text, `${quoted(m[1]!)} is not an IPv4 or IPv6 address`);
  }
}

function number(text: string, word: string | undefined, what: string, max: number): number {
  const n = word !== undefined && /^(0x[0-9a-f]+|\d+)$/i.test(word) ? Number(word) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > max) throw invalid(text, `${what} needs a number from 0 to ${max}${word ? `, got ${quoted(word)}` : ''}`);
  return n;
}

export function parsePacketText(text: string): ParsedPacket {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [proto, src, arrow, dst, ...rest] = words;
  if (proto !== 'tcp' && proto !== 'udp') throw invalid(text, `it must start with tcp or udp${proto ? `, not ${quoted(proto)}` : ''}`);
  if (!src || arrow !== '->' || !dst) throw invalid(text, 'the addresses must read SADDR:SPORT -> DADDR:DPORT');
  const s = endpoint(text, src);
  const d = endpoint(text, dst);
  if (s.addr.family !== d.addr.family) throw invalid(text, 'source and destination are of different families');
  let iif: string | undefined;
  let origin: 'wire' | 'local' = 'wire';
  let flags: number | undefined;
  let mark = 0;
  let dscp = 0;
  let ttl = 64;
  let ct: CtState | undefined;
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    const next = rest[i + 1];
    switch (w) {
      case 'iif':
        if (!next) throw invalid(text, 'iif needs an interface name');
        iif = next;
        i++;
        break;
      case 'local':
        origin = 'local';
        break;
      case 'mark':
        mark = number(text, next, 'mark', 0xffffffff);
        i++;
        break;
      case 'dscp':
        dscp = next !== undefined && DSCP_NAMES[next] !== undefined ? DSCP_NAMES[next] : number(text, next, 'dscp', 63);
        i++;
        break;
      case 'ttl':
      case 'hoplimit':
        ttl = number(text, next, w, 255);
        i++;
        break;
      case 'ct':
        if (!next || !['new', 'established', 'related', 'invalid', 'untracked'].includes(next)) throw invalid(text, 'ct needs new, established, related, invalid or untracked');
        ct = next as CtState;
        i++;
        break;
      default: {
        const names = w.split(',');
        if (proto === 'tcp' && names.every((n) => TCP_FLAGS[n] !== undefined)) {
          flags = (flags ?? 0) | names.reduce((acc, n) => acc | TCP_FLAGS[n]!, 0);
          break;
        }
        throw invalid(text, `unknown word ${quoted(w)}`);
      }
    }
  }
  if (origin === 'wire' && iif === undefined) throw invalid(text, 'say where it arrives (iif NAME) or that a local process sends it (local)');
  const tcpFlags = proto === 'tcp' ? (flags ?? TCP_FLAGS.syn!) : 0;
  const isSyn = proto === 'tcp' && (tcpFlags & (TCP_FLAGS.syn! | TCP_FLAGS.ack!)) === TCP_FLAGS.syn;
  const packet: Packet = {
    family: s.addr.family,
    l4proto: proto,
    saddr: s.addr,
    daddr: d.addr,
    sport: s.port,
    dport: d.port,
    tcpFlags,
    ...(iif !== undefined ? { iif } : {}),
    mark,
    dscp,
    ecn: 0,
    ttl,
    ctState: ct ?? (proto === 'udp' || isSyn ? 'new' : 'established'),
  };
  return { packet, origin };
}

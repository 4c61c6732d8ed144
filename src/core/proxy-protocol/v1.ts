/**
 * PROXY protocol version 1: one text line (proxy-protocol.txt section 2.1).
 *
 *   PROXY TCP4 198.51.100.10 203.0.113.20 40000 80\r\n
 *   PROXY TCP6 2001:db8:1::10 2001:db8:2::20 40000 443\r\n
 *   PROXY UNKNOWN[ anything]\r\n        (the receiver uses the connection's own endpoints)
 *
 * Single spaces, addresses in their usual text forms, ports in decimal without leading zeros, and
 * at most 107 bytes with the CRLF. v1 knows neither LOCAL nor UDP nor TLVs.
 */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../errors.js';
import type { Endpoint } from '../net/sockaddr.js';
import { PROXY_MORE, V1_MAX_BYTES, V1_PREFIX, proxyInvalid, type ProxyDecodeResult, type ProxyHeader } from './header.js';

const CR = 0x0d;
const LF = 0x0a;
const PORT = /^(0|[1-9][0-9]{0,4})$/;

export function encodeProxyHeaderV1(header: Pick<ProxyHeader, 'command' | 'transport' | 'addresses'>): Buffer {
  if (header.command !== 'proxy') {
    throw new TproxyError('ERR_INVALID_ARGUMENT', 'PROXY protocol v1 cannot express a LOCAL header: use v2', { command: header.command });
  }
  const { addresses } = header;
  if (header.transport === 'unspec' || addresses === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  if (header.transport !== 'tcp') {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `PROXY protocol v1 carries TCP only, not ${header.transport}: use v2`, { transport: header.transport });
  }
  const { source, destination } = addresses;
  if (source.family !== destination.family) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `a PROXY header needs source and destination of one family (IPv${source.family} and IPv${destination.family} given)`, {
      source: source.address,
      destination: destination.address,
    });
  }
  const family = source.family === 4 ? 'TCP4' : 'TCP6';
  const text = (e: Endpoint): string => ipaddr.parse(e.address).toString();
  return Buffer.from(`PROXY ${family} ${text(source)} ${text(destination)} ${source.port} ${destination.port}\r\n`, 'latin1');
}

/** A v1 header at the start of `bytes` (which start with a prefix of "PROXY "). */
export function decodeProxyHeaderV1(bytes: Uint8Array): ProxyDecodeResult {
  const seen = Math.min(bytes.length, V1_MAX_BYTES);
  for (let i = 0; i < Math.min(seen, V1_PREFIX.length); i++) if (bytes[i] !== V1_PREFIX[i]) return proxyInvalid('bad-signature');
  let cr = -1;
  for (let i = V1_PREFIX.length; i < seen; i++) {
    if (bytes[i] === CR) {
      cr = i;
      break;
    }
  }
  if (cr < 0 || cr + 1 >= seen) return bytes.length >= V1_MAX_BYTES ? proxyInvalid('v1-no-crlf') : PROXY_MORE;
  if (bytes[cr + 1] !== LF) return proxyInvalid('v1-no-crlf');
  const take = cr + 2;
  const line = Buffer.from(bytes.buffer, bytes.byteOffset, cr).toString('latin1');
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return proxyInvalid('v1-malformed');
  }
  const fields = line.split(' ');
  if (fields[1] === 'UNKNOWN') return { kind: 'header', take, header: { version: 1, command: 'proxy', transport: 'unspec', tlvs: [] } };
  if (fields.length !== 6) return proxyInvalid('v1-malformed');
  const [, protocol, sourceText, destinationText, sourcePort, destinationPort] = fields as [string, string, string, string, string, string];
  const family = protocol === 'TCP4' ? 4 : protocol === 'TCP6' ? 6 : undefined;
  if (family === undefined) return proxyInvalid('v1-malformed');
  const source = endpoint(family, sourceText, sourcePort);
  const destination = endpoint(family, destinationText, destinationPort);
  if (source === undefined || destination === undefined) return proxyInvalid('v1-malformed');
  return { kind: 'header', take, header: { version: 1, command: 'proxy', transport: 'tcp', addresses: { source, destination }, tlvs: [] } };
}

function endpoint(family: 4 | 6, address: string, portText: string): Endpoint | undefined {
  if (!PORT.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  if (family === 4) return ipaddr.IPv4.isValidFourPartDecimal(address) ? { family, address, port } : undefined;
  if (!ipaddr.IPv6.isValid(address) || address.includes('%')) return undefined;
  return { family, address: ipaddr.IPv6.parse(address).toString(), port };
}

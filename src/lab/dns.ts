/** A minimal DNS client message (RFC 1035): one question out, the A / AAAA answers back. Pure. */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../core/errors.js';

export type DnsType = 'A' | 'AAAA';
const TYPE_CODE: Readonly<Record<DnsType, number>> = { A: 1, AAAA: 28 };

/** A recursive query for `name` with id `id`. */
export function encodeDnsQuery(id: number, name: string, type: DnsType): Buffer {
  const labels = name.replace(/\.$/, '').split('.');
  const question = Buffer.concat([
    ...labels.map((l) => {
      if (l.length === 0 || l.length > 63) throw new TproxyError('ERR_INVALID_ARGUMENT', `"${name}" is not a DNS name`);
      return Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]);
    }),
    Buffer.from([0, 0, TYPE_CODE[type], 0, 1]),
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, question]);
}

export interface DnsAnswer {
  readonly id: number;
  readonly rcode: number;
  readonly addresses: string[];
}

function skipName(msg: Buffer, offset: number): number {
  let at = offset;
  for (let guard = 0; guard < 128; guard++) {
    const len = msg.readUInt8(at);
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2;
    at += 1 + len;
  }
  throw new TproxyError('ERR_INVALID_ARGUMENT', 'malformed DNS name');
}

/** The id, response code and A / AAAA addresses of a DNS response. */
export function decodeDnsResponse(msg: Buffer): DnsAnswer {
  if (msg.length < 12) throw new TproxyError('ERR_INVALID_ARGUMENT', `DNS message of ${msg.length} bytes is too short`);
  const questions = msg.readUInt16BE(4);
  const answers = msg.readUInt16BE(6);
  let at = 12;
  for (let i = 0; i < questions; i++) at = skipName(msg, at) + 4;
  const addresses: string[] = [];
  for (let i = 0; i < answers; i++) {
    at = skipName(msg, at);
    const type = msg.readUInt16BE(at);
    const length = msg.readUInt16BE(at + 8);
    const data = msg.subarray(at + 10, at + 10 + length);
    if ((type === 1 && length === 4) || (type === 28 && length === 16)) addresses.push(ipaddr.fromByteArray([...data]).toString());
    at += 10 + length;
  }
  return { id: msg.readUInt16BE(0), rcode: msg.readUInt16BE(2) & 0xf, addresses };
}

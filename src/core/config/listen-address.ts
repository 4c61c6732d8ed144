/** HOST:PORT of an opt-in TCP endpoint (metrics.listen). Pure. */
import { isIP } from 'node:net';
import { TproxyError } from '../errors.js';
import { clipped } from '../quote.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export const LISTEN_ADDRESS_FORM = 'HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464';

/** `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`; port 0 takes a free one. Otherwise why not. */
export function readListenAddress(text: string): ListenAddress | { readonly why: string } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
  if (!m) return { why: 'not HOST:PORT' };
  const host = m[1] ?? m[2] ?? '';
  if (m[1] !== undefined && isIP(host) !== 6) return { why: `${host} is not an IPv6 address` };
  if (m[2] !== undefined && host !== 'localhost' && isIP(host) !== 4) return { why: `${host} is not an IPv4 address or localhost (IPv6 goes in brackets)` };
  const port = Number(m[3]);
  if (port > 65_535) return { why: 'the port must be from 0 to 65535' };
  return { host, port };
}

export function parseListenAddress(option: string, text: string): ListenAddress {
  const address = readListenAddress(text);
  if ('why' in address) throw new TproxyError('ERR_INVALID_ARGUMENT', `${option} ${clipped(text)}: ${address.why} (write ${LISTEN_ADDRESS_FORM})`, { value: clipped(text) });
  return address;
}

export function formatListenAddress(address: ListenAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Parsing of the `--intercept PROTO:PORTS` and `--family` notations. Pure. */
import { TproxyError } from '../errors.js';
import { clipped, quoted } from '../quote.js';
import type { Family, Transport } from '../net/constants.js';
import type { InterceptSpec, PortRange } from '../rules/config.js';

function parsePort(text: string, whole: string): number {
  if (!/^\d{1,5}$/.test(text)) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `--intercept ${clipped(whole)}: ${quoted(text)} is not a port number (use PROTO:PORT[,PORT|FROM-TO...], e.g. tcp:80,443 or udp:53)`, { value: clipped(whole) });
  }
  const port = Number(text);
  if (port < 1 || port > 65535) throw new TproxyError('ERR_INVALID_ARGUMENT', `--intercept ${clipped(whole)}: port ${port} is outside 1-65535`, { value: clipped(whole) });
  return port;
}

/** `tcp:80,443`, `udp:53`, `tcp:8000-8100` -> InterceptSpec. */
export function parseIntercept(text: string): InterceptSpec {
  const match = /^(tcp|udp):(.+)$/.exec(text.trim().toLowerCase());
  if (!match) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `--intercept ${clipped(text)}: expected PROTO:PORTS with PROTO tcp or udp, e.g. tcp:80,443 or udp:53`, { value: clipped(text) });
  }
  const transport = match[1] as Transport;
  const ports: PortRange[] = (match[2] ?? '').split(',').map((part) => {
    const [from = '', to] = part.split('-');
    const range = { from: parsePort(from, text), to: to === undefined ? parsePort(from, text) : parsePort(to, text) };
    if (range.from > range.to) throw new TproxyError('ERR_INVALID_ARGUMENT', `--intercept ${clipped(text)}: range ${clipped(part)} is reversed (write FROM-TO with FROM <= TO)`, { value: clipped(text) });
    return range;
  });
  return { transport, ports };
}

/** Merge specs of the same transport (`--intercept tcp:80 --intercept tcp:443`). */
export function mergeIntercepts(specs: readonly InterceptSpec[]): InterceptSpec[] {
  const byTransport = new Map<Transport, PortRange[]>();
  for (const spec of specs) {
    const ports = byTransport.get(spec.transport) ?? [];
    byTransport.set(spec.transport, ports);
    for (const range of spec.ports) ports.push(range);
  }
  return [...byTransport].map(([transport, ports]) => ({ transport, ports }));
}

export function parseFamily(text: string): Family[] {
  switch (text) {
    case '4':
    case 'ipv4':
      return [4];
    case '6':
    case 'ipv6':
      return [6];
    case 'both':
      return [4, 6];
    default:
      throw new TproxyError('ERR_INVALID_ARGUMENT', `--family ${clipped(text)}: use 4, 6 or both`, { value: clipped(text) });
  }
}

export function parsePortOption(name: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `--${name} ${clipped(text)}: use a port number from 1 to 65535`, { value: clipped(text) });
  }
  return Number(text);
}

/** A whole number of at least `min` given as `--NAME TEXT`. */
export function parseInteger(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `--${name} ${clipped(text)}: use ${min <= 1 ? 'a positive integer' : `an integer of at least ${min}`}`, { value: clipped(text) });
  }
  return value;
}

export function parseMark(name: string, text: string): number {
  if (!/^(0x[0-9a-f]{1,8}|\d{1,10})$/i.test(text) || Number(text) > 0xffffffff) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `--${name} ${clipped(text)}: use a 32-bit number, decimal or hex (e.g. 0x1)`, { value: clipped(text) });
  }
  return Number(text);
}

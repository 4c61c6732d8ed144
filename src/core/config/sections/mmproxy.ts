/**
 * `mmproxy:` listeners behind a load balancer (what go-mmproxy does). Each accepts connections on
 * an ordinary address and port from the balancer only, reads the PROXY protocol header (v1 or v2)
 * the balancer puts in front, and connects to the backend FROM the client's address and port that
 * the header names, so the backend sees the real client.
 *
 * A section of its own rather than a kind of `listeners:` entry: nothing is intercepted (no
 * intercept ports, no tproxy rule, no fwmark route), and what it needs instead (the balancers
 * allowed, the backend, the header's bounds, health checks) has no meaning on a transparent
 * listener; one kind per section keeps every check in one place and each reference entry true.
 */
import net from 'node:net';
import { TproxyError } from '../../errors.js';
import { parsePrefix } from '../../net/prefix.js';
import { type ConfigIssue, type Infer, integer, list, mark, milliseconds, oneOf, optional, refused, section, text } from '../schema.js';

/** `HOST:PORT` with HOST an IP address (IPv6 in brackets). */
export interface MmproxyEndpoint {
  readonly address: string;
  readonly port: number;
}

export function parseHostPort(t: string): MmproxyEndpoint {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(t) ?? /^([^:]+):(\d{1,5})$/.exec(t);
  const p = m ? Number(m[2]) : NaN;
  if (!m || net.isIP(m[1]!) === 0 || p < 1 || p > 65535) throw new TproxyError('ERR_INVALID_ARGUMENT', `backend: "${t}" is not ADDR:PORT`, {});
  return { address: m[1]!, port: p };
}

const endpoint = (help: string, example: string) =>
  text({ type: 'ADDR:PORT', allowed: 'ADDR:PORT with ADDR an IP address (IPv6 in brackets, e.g. [2001:db8::1]:80)', example, help, parse: (t) => {
    try {
      return parseHostPort(t);
    } catch {
      return refused();
    }
  } });

export const MMPROXY_LISTENER = section({
  help: 'One listener behind a load balancer: PROXY protocol in, the client\'s own address out.',
  fields: {
    name: text({ allowed: 'a name of letters, digits, - and _ (1-32, starting with a letter)', example: 'web', default: 'mmproxy', help: 'Names this listener in logs and metrics.', parse: (t) => (/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(t) ? t : refused()) }),
    protocol: oneOf(['tcp', 'udp'] as const, { default: 'tcp', help: 'tcp: connections, each behind a PROXY header (v1 or v2). udp: datagrams, each behind its own PROXY v2 header (DGRAM), as go-mmproxy sends them; the replies go back to the balancer without a header.' }),
    listen: list(endpoint('listen address and port', '0.0.0.0:8443'), { default: ['0.0.0.0:8443'], minItems: 1, help: 'Address and port to accept the balancer\'s connections on (ordinary sockets, not intercepted); one entry per address.' }),
    allowedSources: list(
      text({ type: 'prefix', allowed: 'an IPv4 or IPv6 address or prefix (e.g. 10.0.0.0/8)', help: 'balancer prefix', parse: (t) => {
        try {
          parsePrefix(t, 'allowedSources');
          return t;
        } catch {
          return refused();
        }
      } }),
      { default: ['127.0.0.0/8', '::1/128'], minItems: 1, help: 'Only connections from these prefixes (the balancers) are read; any other is reset and counted as source-not-allowed. A PROXY header is a claim anyone can make: list the balancers only.' },
    ),
    backend4: optional(endpoint('The backend for IPv4 clients (e.g. 127.0.0.1:80); absent: the destination the header names.', '127.0.0.1:80')),
    backend6: optional(endpoint('The backend for IPv6 clients (e.g. [::1]:80); absent: the destination the header names.', '[::1]:80')),
    headerTimeoutMs: milliseconds({ min: 1, default: 5_000, help: 'The whole PROXY header must arrive within this time after the connection is accepted; otherwise the connection is reset (counted as header-timeout).' }),
    maxHeaderBytes: integer({ min: 107, max: 65_551, default: 2048, unit: 'bytes', help: 'Longest v2 header accepted (addresses and TLVs included); a longer declared length is refused at once (v2-too-long). v1 lines are 107 bytes at most by the specification.' }),
    healthTarget: optional(endpoint('Where a LOCAL header (the balancer\'s own health check) is connected to, from this host\'s address; absent: a LOCAL connection is closed after its header (a clean close tells the balancer the listener is up).', '127.0.0.1:80')),
    upstreamMark: mark({ default: '0x2', help: 'SO_MARK of the connections to the backend (the policy rule for the replies matches it).' }),
    connectTimeoutMs: milliseconds({ min: 1, default: 10_000, help: 'Backend connect timeout.' }),
    idleTimeoutMs: milliseconds({ min: 0, default: 600_000, help: 'A flow idle both ways this long is closed (0: never). For udp, a session: one per balancer socket, client and destination.' }),
    maxSessions: integer({ min: 1, max: 1_000_000, default: 4096, help: 'udp: sessions open at once (one socket each); a datagram that would open one more is dropped (counted as session-limit).' }),
  },
  check(l, path, issues) {
    for (const [f, key] of [[4, 'backend4'], [6, 'backend6']] as const) {
      const b = l[key];
      if (b && net.isIP(b.address) !== f) issues.push({ path: [...path, key], message: `${b.address} is not an IPv${f} address: ${key} is the backend for IPv${f} clients` });
    }
  },
});

export type MmproxySettings = Infer<typeof MMPROXY_LISTENER>;

/** Names differ across mmproxy listeners. */
export function checkMmproxy(listeners: readonly MmproxySettings[], issues: ConfigIssue[]): void {
  for (const [i, a] of listeners.entries()) {
    const j = listeners.findIndex((b) => b.name === a.name);
    if (j < i) issues.push({ path: ['mmproxy', i, 'name'], message: `"${a.name}" is already the name of mmproxy[${j}]: each needs its own name` });
  }
}

export const MMPROXY = list(MMPROXY_LISTENER, {
  default: [],
  allowed: 'a list of mmproxy listeners',
  help: 'Listeners behind a load balancer that sends a PROXY protocol header (none by default).',
});

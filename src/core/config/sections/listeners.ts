/**
 * `listeners:` the proxy's transparent listeners. Each has its own port (the tproxy rules send the
 * traffic it intercepts there), families, upstream mode and mark, and its own limits and timeouts.
 */
import net from 'node:net';
import type { Family } from '../../net/constants.js';
import { formatUpstreamProxy, maskProxyUrl, parseUpstreamProxy } from '../../upstream/proxy-url.js';
import { DSCP_NAMES } from '../../net/dscp.js';
import { quoted } from '../../quote.js';
import { parseIntercept } from '../intercept.js';
import { type ConfigIssue, type Infer, type Refusal, integer, list, mark, milliseconds, oneOf, optional, port, refused, refusing, section, text, type ValueSetting } from '../schema.js';

export const UPSTREAM_MODES = ['direct', 'transparent'] as const;
export const UDP_MAPPING_CHOICES = ['endpoint-dependent', 'endpoint-independent'] as const;

const family: ValueSetting<Family> = {
  kind: 'value',
  type: '4 | 6',
  allowed: '4 or 6',
  help: 'address family',
  parse: (raw) => (raw === 4 || raw === 6 ? raw : refused()),
};

const udp = section({
  help: 'UDP sessions of this listener.',
  fields: {
    maxSessions: integer({ min: 1, default: 65_536, unit: 'sessions', help: 'UDP sessions at most; the least recently used is evicted.', flag: { name: 'udp-max-sessions', metavar: 'N' } }),
    idleTimeoutMs: milliseconds({ min: 100, default: 60_000, help: 'A UDP session idle this long ends.', flag: { name: 'udp-idle-timeout-ms', metavar: 'N' } }),
    mapping: oneOf(UDP_MAPPING_CHOICES, {
      default: 'endpoint-dependent',
      help: 'endpoint-dependent: only the original destination answers (with upstream transparent, datagrams from anyone else to the client\'s address and port are dropped at this host and counted as unsolicited); endpoint-independent: any remote that sends to the client\'s upstream port reaches the client (full cone, for games and STUN).',
      flag: { name: 'udp-mapping', metavar: 'MODE' },
    }),
  },
});

const headers = section({
  help: 'IP header fields of the packets the proxy sends for this listener\'s flows: toward servers and back to clients, TCP and UDP. (The rules\' intercepted-dscp/ttl only rewrite the packets arriving at the proxy, which end there.)',
  fields: {
    dscp: optional({
      ...integer({ min: 0, max: 63, help: 'DSCP of every packet the proxy sends for this listener, both ways (IP_TOS / IPV6_TCLASS on its sockets): 0-63, a name (ef, af41, cs1, ...), or copy: each flow keeps the DSCP its client sent (TCP: the SYN\'s, UDP: the first datagram\'s). Absent: 0, the kernel\'s default.', example: 'ef', flag: { name: 'set-dscp', metavar: 'N|NAME|copy', toRaw: (t: string) => (/^\d+$/.test(t) ? Number(t) : t) } }),
      type: 'integer | name | copy',
      allowed: `an integer from 0 to 63, a name (${Object.keys(DSCP_NAMES).join(', ')}) or copy`,
      parse: (raw: unknown): number | 'copy' | Refusal => {
        if (typeof raw === 'string' && raw.toLowerCase() === 'copy') return 'copy';
        const n = typeof raw === 'string' ? DSCP_NAMES[raw.toLowerCase()] : raw;
        return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 63 ? n : refused();
      },
    }),
    ttl: optional(integer({ min: 1, max: 255, help: 'IPv4 TTL and IPv6 hop limit of every packet the proxy sends for this listener, both ways (IP_TTL / IPV6_UNICAST_HOPS on its sockets). Absent: the kernel\'s default (64).', example: 64, flag: { name: 'set-ttl', metavar: 'N' } })),
  },
});

export const LISTENER = section({
  help: 'One transparent listener and the traffic the rules send to it.',
  fields: {
    name: text({ allowed: 'a name of letters, digits, - and _ (1-32, starting with a letter)', example: 'web', default: 'main', help: 'Names the listener in logs, rule comments and reloads (a listener keeps running across a reload while its name and settings stay the same).', parse: (t) => (/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(t) ? t : refused()) }),
    port: port({ default: 8000, help: 'Local port of the transparent listener (TCP and UDP); the tproxy rules send the intercepted traffic there.', flag: { name: 'listen', metavar: 'PORT', single: true } }),
    addresses: list(
      text({ type: 'address', allowed: 'an IPv4 or IPv6 address', help: 'listen address', parse: (t) => (net.isIP(t) !== 0 ? t : refused()) }),
      { default: [], allowed: 'a list of at most one IPv4 and one IPv6 address', help: 'Listen on these addresses only (at most one per family; empty: every address of the host); the tproxy rules redirect to them.', flag: { name: 'listen-address', metavar: 'ADDR', multiple: true, single: true } },
    ),
    families: list(family, { default: [4, 6], minItems: 1, help: 'Address families to listen on and intercept.', flag: { name: 'family', metavar: '4|6|both', toRaw: (t) => (t === 'both' ? [4, 6] : t === '4' || t === 'ipv4' ? [4] : t === '6' || t === 'ipv6' ? [6] : t) } }),
    intercept: list(
      text({ type: 'PROTO:PORTS', allowed: 'PROTO:PORTS, e.g. tcp:80,443, udp:53 or tcp:8000-8100', help: 'traffic to intercept', parse: refusing(parseIntercept) }),
      { default: ['tcp:80,443'], minItems: 1, allowed: 'a list of PROTO:PORTS, e.g. [tcp:80,443, udp:53]', help: 'Traffic to intercept and send to this listener, by protocol and destination port.', flag: { name: 'intercept', metavar: 'PROTO:PORTS', multiple: true, single: true } },
    ),
    upstream: oneOf(UPSTREAM_MODES, { default: 'direct', help: 'Source address toward servers: this host\'s (direct) or the client\'s (transparent; needs replies routed back through this host).', flag: { name: 'upstream', metavar: 'MODE' } }),
    upstreamProxy: optional(
      text({
        type: 'URL',
        allowed: 'socks5://[USER:PASS@]ADDR:PORT or http://[USER:PASS@]ADDR:PORT with ADDR an IP address',
        example: 'socks5://192.0.2.7:1080',
        help: 'Relay this listener\'s flows through this SOCKS5 proxy (TCP by CONNECT, UDP by UDP ASSOCIATE) or HTTP CONNECT proxy (TCP only) instead of straight to their original destination (needs upstream direct); absent: no proxy.',
        flag: { name: 'upstream-proxy', metavar: 'URL' },
        shown: maskProxyUrl,
        parse: refusing(parseUpstreamProxy),
      }),
    ),
    outbound: optional(
      text({
        type: 'name',
        allowed: 'the name of an outbound (direct, transparent, reject or one of outbounds)',
        example: 'corp',
        help: 'The outbound of this listener\'s flows that no route matches; absent: upstream, or upstreamProxy when set (both are shorthands for it).',
        flag: { name: 'outbound', metavar: 'NAME' },
        parse: (t) => (/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(t) ? t : refused()),
      }),
    ),
    sniffTimeoutMs: milliseconds({ min: 1, max: 60_000, default: 300, help: 'When a route matches on names, how long a TCP flow waits for the client\'s first bytes (TLS SNI, HTTP Host), and a UDP flow for the rest of a QUIC ClientHello that takes several datagrams, before it is routed without a name.', flag: { name: 'sniff-timeout-ms', metavar: 'N' } }),
    upstreamMark: mark({ default: '0x2', help: 'SO_MARK of the upstream sockets, so the proxy\'s own traffic is never intercepted again; must differ from the fwmark.', flag: { name: 'upstream-mark', metavar: 'N' } }),
    maxConnections: integer({ min: 1, default: 100_000, unit: 'connections', help: 'Concurrent TCP flows per worker; accepting pauses at the cap (the kernel backlog holds new connections).', flag: { name: 'max-connections', metavar: 'N' } }),
    connectTimeoutMs: milliseconds({ min: 1, default: 10_000, help: 'Upstream TCP connect timeout.', flag: { name: 'connect-timeout-ms', metavar: 'N' } }),
    idleTimeoutMs: milliseconds({ min: 0, default: 600_000, help: 'A TCP flow idle both ways this long is closed (0: never).', flag: { name: 'idle-timeout-ms', metavar: 'N' } }),
    keepAliveMs: milliseconds({ min: 0, default: 0, help: 'TCP keepalive on both sides after this idle time (0: off).', flag: { name: 'keepalive-ms', metavar: 'N' } }),
    udp,
    headers,
  },
  check(listener, path, issues) {
    const seen = new Set<number>();
    for (const [i, address] of listener.addresses.entries()) {
      const f = net.isIPv4(address) ? 4 : 6;
      if (seen.has(f)) issues.push({ path: [...path, 'addresses', i], message: `${quoted(address)} is a second IPv${f} address: use at most one per family` });
      else if (!listener.families.includes(f)) issues.push({ path: [...path, 'addresses', i], message: `${quoted(address)} is an IPv${f} address but families is [${listener.families.join(', ')}]` });
      seen.add(f);
    }
    if (listener.upstreamProxy) {
      const name = formatUpstreamProxy(listener.upstreamProxy);
      if (listener.upstream !== 'direct') issues.push({ path: [...path, 'upstreamProxy'], message: `${name} needs upstream direct (flows through a proxy leave from this host's address), not ${listener.upstream}` });
      if (listener.upstreamProxy.protocol === 'http' && listener.intercept.some((s) => s.transport === 'udp')) issues.push({ path: [...path, 'upstreamProxy'], message: `${name} carries TCP only (HTTP CONNECT), but intercept has udp: intercept tcp only on this listener, or use a socks5:// proxy (UDP ASSOCIATE)` });
    }
    if (listener.outbound !== undefined && listener.upstreamProxy) issues.push({ path: [...path, 'outbound'], message: 'outbound and upstreamProxy both name the way out: keep outbound (an outbound of kind socks5 or http holds the proxy)' });
    if (listener.outbound !== undefined && listener.upstream !== 'direct') issues.push({ path: [...path, 'outbound'], message: `outbound and upstream ${listener.upstream} both name the way out: keep outbound (the built-in outbound transparent is upstream transparent)` });
    if (new Set(listener.families).size !== listener.families.length) issues.push({ path: [...path, 'families'], message: `[${listener.families.join(', ')}] lists a family twice: use [4], [6] or [4, 6]` });
  },
});

export type ListenerSettings = Infer<typeof LISTENER>;

/** Listeners must differ in name, and in port where they share a transport and family. */
export function checkListeners(listeners: readonly ListenerSettings[], issues: ConfigIssue[]): void {
  for (const [i, a] of listeners.entries()) {
    for (const [j, b] of listeners.slice(0, i).entries()) {
      if (a.name === b.name) issues.push({ path: ['listeners', i, 'name'], message: `${quoted(a.name)} is already the name of listeners[${j}]: each listener needs its own name` });
      const shared = a.intercept.some((x) => b.intercept.some((y) => y.transport === x.transport)) && a.families.some((f) => b.families.includes(f));
      if (a.port === b.port && shared) issues.push({ path: ['listeners', i, 'port'], message: `${a.port} is already the port of listeners[${j}] (${b.name}): each listener needs its own port` });
    }
  }
}

export const LISTENERS = list(LISTENER, {
  default: [{}],
  allowed: 'a list of listeners',
  help: 'The transparent listeners; each intercepts its own ports (one listener, named main, by default; none by default when the file has mmproxy entries, and [] runs none).',
});

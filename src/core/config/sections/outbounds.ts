/**
 * `outbounds:` named ways out for the routes: a kind (direct, transparent, socks5, http, reject),
 * the proxy's URL for socks5 and http, and an optional PROXY protocol header toward the next hop.
 * `direct`, `transparent` and `reject` exist without being written here.
 */
import { isBuiltInOutbound, OUTBOUND_KINDS, type Outbound, PROXY_PROTOCOL_VERSIONS } from '../../route/outbound.js';
import { parseUpstreamProxy } from '../../upstream/proxy-url.js';
import { type Infer, list, oneOf, optional, refused, refusing, section, text } from '../schema.js';

export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
export const NAME_ALLOWED = 'a name of letters, digits, - and _ (1-32, starting with a letter)';

export const OUTBOUND = section({
  help: 'One named way out.',
  fields: {
    name: text({ allowed: NAME_ALLOWED, example: 'corp', help: 'Names the outbound in routes, logs and metrics (direct, transparent and reject are built in).', parse: (t) => (NAME_PATTERN.test(t) ? t : refused()) }),
    kind: oneOf(OUTBOUND_KINDS, { example: 'socks5', help: 'direct: this host\'s address; transparent: the client\'s address; socks5: through that proxy (url), TCP by CONNECT and UDP by UDP ASSOCIATE (one association per UDP session); http: through that proxy by CONNECT, TCP only; reject: TCP reset, UDP dropped.' }),
    url: optional(
      text({
        type: 'URL',
        allowed: 'socks5://[USER:PASS@]ADDR:PORT or http://[USER:PASS@]ADDR:PORT with ADDR an IP address',
        example: 'socks5://192.0.2.7:1080',
        help: 'The proxy of a socks5 or http outbound (credentials are never printed); absent for the other kinds.',
        parse: refusing(parseUpstreamProxy),
      }),
    ),
    proxyProtocol: optional(oneOf(PROXY_PROTOCOL_VERSIONS, { example: 'v2', help: 'Send a PROXY protocol header (v1 text, v2 binary) to the next hop first, so it sees the real client (TCP only: an outbound with it cannot carry UDP); absent: none.' })),
  },
  check(o, path, issues) {
    if (isBuiltInOutbound(o.name)) issues.push({ path: [...path, 'name'], message: `"${o.name}" is a built-in outbound: give this one another name (e.g. ${o.name}-pp) and use it in routes` });
    if (o.kind === 'socks5' || o.kind === 'http') {
      if (!o.url) issues.push({ path: [...path, 'url'], message: `missing: a ${o.kind} outbound needs the proxy's URL, e.g. ${o.kind}://192.0.2.7:${o.kind === 'socks5' ? 1080 : 3128}` });
      else if (o.url.protocol !== o.kind) issues.push({ path: [...path, 'url'], message: `is a ${o.url.protocol} URL but kind is ${o.kind}: make them agree` });
    } else if (o.url) issues.push({ path: [...path, 'url'], message: `a ${o.kind} outbound has no proxy: remove url, or use kind socks5 or http` });
    if (o.kind === 'reject' && o.proxyProtocol) issues.push({ path: [...path, 'proxyProtocol'], message: 'a reject outbound sends nothing: remove proxyProtocol' });
  },
});

export type OutboundSettings = Infer<typeof OUTBOUND>;

export const OUTBOUNDS = list(OUTBOUND, {
  default: [],
  allowed: 'a list of outbounds (name, kind, url, proxyProtocol)',
  help: 'Named outbounds the routes send flows to, besides the built-in direct, transparent and reject.',
});

/** The validated setting as the core's Outbound. */
export function outboundOf(o: OutboundSettings): Outbound {
  const pp = o.proxyProtocol ? { proxyProtocol: o.proxyProtocol } : {};
  switch (o.kind) {
    case 'reject':
      return { name: o.name, kind: 'reject' };
    case 'socks5':
    case 'http':
      if (!o.url) throw new Error(`outbound ${o.name}: validated without url`);
      return { name: o.name, kind: o.kind, proxy: o.url, ...pp };
    default:
      return { name: o.name, kind: o.kind, ...pp };
  }
}

/**
 * Upstream proxies: where intercepted TCP flows go when they are not sent straight to their
 * original destination. Written as a URL: `socks5://[user:pass@]ADDR:PORT` or
 * `http://[user:pass@]ADDR:PORT` (HTTP CONNECT). The address must be an IP literal: the data plane
 * never resolves names (a resolver answer could itself be intercepted, and a slow one would stall
 * every new flow).
 */
import { isIP } from 'node:net';
import { TproxyError } from '../errors.js';
import { quoted } from '../quote.js';
import { familyOf, normalizeAddress, type Endpoint } from '../net/sockaddr.js';

export type UpstreamProxyProtocol = 'socks5' | 'http';

export interface UpstreamProxy {
  readonly protocol: UpstreamProxyProtocol;
  readonly endpoint: Endpoint;
  /** SOCKS5 username/password (RFC 1929) or HTTP Basic credentials. */
  readonly auth?: { readonly username: string; readonly password: string };
}

const DEFAULT_PORTS: Record<UpstreamProxyProtocol, number> = { socks5: 1080, http: 3128 };

/**
 * The URL text with its password replaced by `***`, for messages about a URL that may not even
 * parse (`socks5://alice:S3cr3t@203.0.113.20:99999`). A proxy's host is an IP literal, so every
 * `@` belongs to the credentials: everything between `://` and the last `@` is USER[:PASS].
 */
export function maskProxyUrl(text: string): string {
  const at = text.lastIndexOf('@');
  if (at === -1) return text;
  const scheme = text.indexOf('://');
  const start = scheme === -1 || scheme > at ? 0 : scheme + 3;
  const colon = text.indexOf(':', start);
  if (colon === -1 || colon > at) return text;
  return `${text.slice(0, colon)}:***${text.slice(at)}`;
}

function invalid(text: string, why: string): TproxyError {
  const shown = quoted(maskProxyUrl(text));
  return new TproxyError('ERR_INVALID_ARGUMENT', `upstream proxy ${shown}: ${why}; write socks5://ADDR:PORT or http://ADDR:PORT (ADDR an IP address, [..] around IPv6; user:pass@ before it for credentials)`, { value: shown });
}

export function parseUpstreamProxy(text: string): UpstreamProxy {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(text, 'not a URL');
  }
  const protocol = url.protocol.replace(/:$/, '');
  if (protocol !== 'socks5' && protocol !== 'http') throw invalid(text, `${protocol}:// is not supported (socks5 or http)`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) throw invalid(text, 'a path, query or fragment has no meaning here');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) === 0) throw invalid(text, `${host ? quoted(host) : 'the host'} is not an IP address (names are not resolved)`);
  const port = url.port === '' ? DEFAULT_PORTS[protocol] : Number(url.port);
  if (port === 0) throw invalid(text, 'port 0 is not a port a proxy can listen on (use 1-65535)');
  const endpoint: Endpoint = { family: familyOf(host), address: normalizeAddress(host), port };
  if (!url.username && !url.password) return { protocol, endpoint };
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  if (protocol === 'socks5' && (Buffer.byteLength(username) > 255 || Buffer.byteLength(password) > 255)) throw invalid(text, 'SOCKS5 username and password are at most 255 bytes each');
  if (protocol === 'http' && username.includes(':')) throw invalid(text, 'an HTTP Basic username cannot contain ":"');
  return { protocol, endpoint, auth: { username, password } };
}

/** The URL without its password, for logs and status. */
export function formatUpstreamProxy(proxy: UpstreamProxy): string {
  const host = proxy.endpoint.family === 6 ? `[${proxy.endpoint.address}]` : proxy.endpoint.address;
  const user = proxy.auth ? `${encodeURIComponent(proxy.auth.username)}:***@` : '';
  return `${proxy.protocol}://${user}${host}:${proxy.endpoint.port}`;
}

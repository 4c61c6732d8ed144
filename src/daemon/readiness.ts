/**
 * Whether this gateway should get new flows: what /readyz, `tproxy status --ready`, a routing
 * daemon's health check and a Kubernetes readiness probe ask. Pure: the daemon's state, the kernel
 * rules as read back, each listener's health and (optionally) the upstream proxies' reachability
 * go in; ready or not, with every reason, comes out.
 *
 * Ready means all of:
 * - the daemon runs (not starting, not stopping) and is not drained on purpose (`tproxy drain`);
 * - when it manages rules: they are in the kernel as planned and nothing else is in our table
 *   (the same check as `rules status`), and reading them worked;
 * - every listener accepts: TCP (the in-process engine, or every TCP worker process) and the UDP
 *   relay loop;
 * - when health.checkUpstreams is on: every upstream proxy accepted a TCP connection.
 *
 * Liveness (/healthz) is only "the process answers": a gateway that is not ready must not be
 * restarted for it (a drained one, or one whose rules someone removed, is alive).
 */
import type { Endpoint } from '../core/net/sockaddr.js';
import type { RulesView } from './admin-protocol.js';
import type { ProxyHealth } from '../dataplane/proxy.js';

export interface UpstreamReachability {
  /** The outbound's name. */
  readonly outbound: string;
  readonly endpoint: Endpoint;
  readonly reachable: boolean;
  /** Why not (errno or timeout). */
  readonly error?: string;
}

export interface ReadinessInput {
  readonly state: 'starting' | 'running' | 'stopping';
  readonly drained: boolean;
  readonly rules: RulesView;
  readonly listeners: readonly { readonly name: string; readonly health: ProxyHealth }[];
  /** How many mmproxy listeners run (absent: none). */
  readonly mmproxyListeners?: number;
  /** Absent: upstream checks are off. */
  readonly upstreams?: readonly UpstreamReachability[];
}

export interface Readiness {
  readonly ready: boolean;
  readonly drained: boolean;
  /** Why not ready, one line each; empty when ready. */
  readonly reasons: readonly string[];
}

export function judgeReadiness(input: ReadinessInput): Readiness {
  const reasons: string[] = [];
  if (input.state !== 'running') reasons.push(`the daemon is ${input.state}`);
  if (input.drained) reasons.push('drained on purpose (tproxy drain): flows in progress go on, new ones are still served until the routers move them; tproxy undrain ends it');
  reasons.push(...rulesReasons(input.rules));
  if (input.listeners.length === 0 && (input.mmproxyListeners ?? 0) === 0 && input.state === 'running') reasons.push('no listener runs');
  for (const { name, health } of input.listeners) {
    const { tcp, udp } = health;
    if (tcp && !tcp.accepting) reasons.push(tcp.workers.wanted > 0 ? `listener ${name}: ${tcp.workers.running} of ${tcp.workers.wanted} TCP worker processes run` : `listener ${name}: TCP is not accepting`);
    if (udp && !udp.loopRunning) reasons.push(`listener ${name}: the UDP relay loop is not running`);
  }
  for (const u of input.upstreams ?? []) {
    if (!u.reachable) reasons.push(`outbound ${u.outbound}: upstream proxy ${formatEndpoint(u.endpoint)} not reachable${u.error ? ` (${u.error})` : ''}`);
  }
  return { ready: reasons.length === 0, drained: input.drained, reasons };
}

function rulesReasons(view: RulesView): string[] {
  if (!view.managed) return [];
  if ('error' in view) return [`the kernel rules could not be read (${view.backend}): ${view.error}`];
  if (view.inPlace) return [];
  const missing = view.pieces.filter((p) => p.state !== 'in place').map((p) => `${p.name} ${p.state}`);
  const extra = view.unexpected.length > 0 ? [`unexpected: ${view.unexpected.join(', ')}`] : [];
  return [`the kernel rules are not as applied (${view.backend}): ${[...missing, ...extra].join('; ') || 'see tproxy rules status'}`];
}

function formatEndpoint(e: Endpoint): string {
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** The /readyz body: `ready`, or `not ready` and one reason a line (probes show the body). */
export function readinessText(r: Readiness): string {
  return r.ready ? 'ready\n' : `not ready\n${r.reasons.map((line) => `- ${line}\n`).join('')}`;
}

/** The upstream proxies a configuration sends flows through (outbounds of kind socks5 / http, and listeners' upstreamProxy), once each. */
export function upstreamProxiesOf(config: { readonly outbounds: readonly { readonly name: string; readonly url?: { readonly endpoint: Endpoint } | undefined }[]; readonly listeners: readonly { readonly name: string; readonly upstreamProxy?: { readonly endpoint: Endpoint } | undefined }[] }): { outbound: string; endpoint: Endpoint }[] {
  const found = [
    ...config.outbounds.flatMap((o) => (o.url ? [{ outbound: o.name, endpoint: o.url.endpoint }] : [])),
    ...config.listeners.flatMap((l) => (l.upstreamProxy ? [{ outbound: `${l.name} upstreamProxy`, endpoint: l.upstreamProxy.endpoint }] : [])),
  ];
  const seen = new Set<string>();
  return found.filter((u) => {
    const key = `${u.endpoint.address}|${u.endpoint.port}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

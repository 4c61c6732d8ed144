/** What the uring engine prototype cannot do yet for a listener's routing. Pure. */
import { usesNames, type RoutingConfig } from '../../../core/route/config.js';

/** A phrase naming the first thing missing ("routes by name", ...), or undefined when it can run. */
export function uringRoutingGap(routing: RoutingConfig): string | undefined {
  if (routing.routes.some(usesNames)) return 'routes by name (sniffing)';
  for (const outbound of [routing.defaultOutbound, ...routing.outbounds]) {
    if (outbound.kind === 'socks5' || outbound.kind === 'http') return `upstream proxies (outbound ${outbound.name})`;
    if (outbound.kind !== 'reject' && outbound.proxyProtocol !== undefined) return `PROXY protocol headers (outbound ${outbound.name})`;
  }
  return undefined;
}

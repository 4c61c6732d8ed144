/** What the uring engine prototype cannot do yet for a listener's routing. Pure. */
import type { RoutingConfig } from '../../../core/route/config.js';

/** A phrase naming the first thing missing ("upstream proxies ...", ...), or undefined when it can run. */
export function uringRoutingGap(routing: RoutingConfig): string | undefined {
  for (const outbound of [routing.defaultOutbound, ...routing.outbounds]) {
    if (outbound.kind === 'socks5' || outbound.kind === 'http') return `upstream proxies (outbound ${outbound.name})`;
  }
  return undefined;
}

/**
 * Which accepted connections a TCP engine refuses before any upstream work. Pure; both engines
 * call it, so they refuse exactly the same ones.
 */
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { RefusalReason } from '../events.js';

export interface RefusalContext {
  /** Addresses of this host. */
  readonly localAddresses: ReadonlySet<string>;
  /** The port the listener is bound to. */
  readonly listenPort: number;
  readonly activeFlows: number;
  readonly maxConnections: number;
}

export function refusalReason(client: Endpoint, destination: Endpoint, ctx: RefusalContext): RefusalReason | undefined {
  if (ctx.localAddresses.has(destination.address)) {
    // Either a client connected to the listener itself (not through TPROXY), or the original
    // destination is this host: relaying would make the proxy dial itself.
    return destination.port === ctx.listenPort ? 'not-intercepted' : 'loop';
  }
  if (client.address === destination.address) return 'loop';
  if (ctx.activeFlows >= ctx.maxConnections) return 'limit';
  return undefined;
}

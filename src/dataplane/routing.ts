/**
 * What a reload changes in place in a running listener's engines: the routes and outbounds new
 * flows take, and how long a flow waits for its name. Flows and UDP sessions in progress keep the
 * route and outbound they started with (each holds its own decision), so swapping this breaks none
 * of them.
 */
import type { RoutingConfig } from '../core/route/config.js';

export interface RoutingUpdate {
  readonly routing: RoutingConfig;
  readonly sniffTimeoutMs: number;
}

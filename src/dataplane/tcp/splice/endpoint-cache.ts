/**
 * Endpoints shared by the flows of an engine thread: one string per address and one Endpoint per
 * original destination (address and port). A flow keeps its client's and its destination's
 * endpoints for its whole life, and the flows of a host share a few client addresses and
 * destinations; decoded afresh per accept, each flow held its own copies (two address strings of
 * 32 bytes and an Endpoint of 48 for the destination: 112 bytes of each idle flow's ~1.5 KiB).
 *
 * Bounded: at MAX_ADDRESSES addresses it starts over (flows keep what they hold; later flows share
 * new copies), and an address keeps at most MAX_PORTS destinations (a scan of ports is not
 * kept). Endpoints with an IPv6 scope id are not shared.
 */
import type { Endpoint } from '../../../core/net/sockaddr.js';

export const MAX_ADDRESSES = 4096;
export const MAX_PORTS = 64;

interface Shared {
  readonly address: string;
  /** By port; made when the address is first a destination. */
  destinations: Map<number, Endpoint> | undefined;
}

export class EndpointCache {
  private readonly addresses = new Map<string, Shared>();

  private shared(address: string): Shared {
    let shared = this.addresses.get(address);
    if (shared) return shared;
    if (this.addresses.size >= MAX_ADDRESSES) this.addresses.clear();
    shared = { address, destinations: undefined };
    this.addresses.set(address, shared);
    return shared;
  }

  /** The client's endpoint with the shared string of its address (a new object: strings equal in content are not told apart). */
  client(endpoint: Endpoint): Endpoint {
    if (endpoint.scopeId !== undefined) return endpoint;
    return { family: endpoint.family, address: this.shared(endpoint.address).address, port: endpoint.port };
  }

  /** The one Endpoint of this destination (a new one when it is not kept). */
  destination(endpoint: Endpoint): Endpoint {
    if (endpoint.scopeId !== undefined) return endpoint;
    const shared = this.shared(endpoint.address);
    const destinations = (shared.destinations ??= new Map<number, Endpoint>());
    const known = destinations.get(endpoint.port);
    if (known) return known;
    const kept = { family: endpoint.family, address: shared.address, port: endpoint.port };
    if (destinations.size < MAX_PORTS) destinations.set(endpoint.port, kept);
    return kept;
  }
}

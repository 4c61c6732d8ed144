/**
 * The upstream socket's setup as a list of ring operations (pure): the options
 * openUpstreamSocket sets with synchronous calls, in the same order, then the bind, so the uring
 * engine can queue socket options, bind and connect as one linked chain (no system call of its
 * own). TCP_NODELAY joins them (the other engines set it once connected; before the SYN is as
 * good). SO_LINGER {1, 0} comes last, as openUpstreamSocket sets it after the bind.
 *
 * With bytes to send as soon as it connects (`firstBytes`: the client's, held since before the
 * connect), TCP_QUICKACK 0 as well: the handshake's last ACK is not sent alone but with those bytes
 * (one packet fewer to the server per connection, as HAProxy's tcp-smart-connect). The relay turns
 * quick ACKs back on once they went (ring-relay.ts): left delaying, a server that writes a reply in
 * two small pieces without TCP_NODELAY would wait 40 ms or more (Nagle) for our ACK of the first.
 */
import * as C from '../../../core/net/constants.js';
import type { Endpoint } from '../../../core/net/sockaddr.js';
import type { OutboundKind } from '../../../core/route/outbound.js';

/** One setsockopt: `value` names which of the engine's constant option values it takes. */
export interface RingOption {
  readonly level: number;
  readonly name: number;
  readonly value: 'one' | 'zero' | 'mark' | 'dscp' | 'ttl' | 'linger';
  /** For errors: the option's name as in the kernel headers. */
  readonly label: string;
}

export interface UpstreamSetup {
  readonly domain: number;
  readonly options: readonly RingOption[];
  /** Where to bind before connecting (none: the kernel picks at connect). */
  readonly bind: Endpoint | undefined;
}

/**
 * The setup of the upstream socket of a flow from `client` through a direct or transparent
 * outbound (the socket of an upstream proxy is opened with synchronous calls: never asked here;
 * mmproxy's backend socket is a transparent one from the header's source, a direct one for a
 * health check). `portTaken`: the client's port was in use here at the first try, so bind its
 * address with port 0 and IP_BIND_ADDRESS_NO_PORT. `firstBytes`: bytes wait to be sent once it
 * connects.
 */
export function upstreamSetup(client: Endpoint, outbound: { readonly kind: OutboundKind }, settings: { readonly dscp: boolean; readonly ttl: boolean }, portTaken: boolean, firstBytes: boolean): UpstreamSetup {
  const v4 = client.family === 4;
  const transparent = outbound.kind === 'transparent';
  // The list depends on six flags only: built once per combination (this runs per connection).
  const key = (v4 ? 1 : 0) | (transparent ? 2 : 0) | (portTaken ? 4 : 0) | (settings.dscp ? 8 : 0) | (settings.ttl ? 16 : 0) | (firstBytes ? 32 : 0);
  let options = OPTION_LISTS.get(key);
  if (!options) {
    options = optionList(v4, transparent, settings, portTaken, firstBytes);
    OPTION_LISTS.set(key, options);
  }
  const bind = transparent ? (portTaken ? { ...client, port: 0 } : client) : undefined;
  return { domain: v4 ? C.AF_INET : C.AF_INET6, options, bind };
}

const OPTION_LISTS = new Map<number, readonly RingOption[]>();

function optionList(v4: boolean, transparent: boolean, settings: { readonly dscp: boolean; readonly ttl: boolean }, portTaken: boolean, firstBytes: boolean): RingOption[] {
  const ip = v4 ? C.SOL_IP : C.SOL_IPV6;
  const options: RingOption[] = [];
  if (!v4) options.push({ level: C.SOL_IPV6, name: C.IPV6_V6ONLY, value: 'one', label: 'IPV6_V6ONLY' });
  if (transparent && !portTaken) options.push({ level: C.SOL_SOCKET, name: C.SO_REUSEADDR, value: 'one', label: 'SO_REUSEADDR' });
  if (transparent) options.push({ level: ip, name: v4 ? C.IP_TRANSPARENT : C.IPV6_TRANSPARENT, value: 'one', label: v4 ? 'IP_TRANSPARENT' : 'IPV6_TRANSPARENT' });
  options.push({ level: C.SOL_SOCKET, name: C.SO_MARK, value: 'mark', label: 'SO_MARK' });
  if (transparent && portTaken) options.push({ level: C.SOL_IP, name: C.IP_BIND_ADDRESS_NO_PORT, value: 'one', label: 'IP_BIND_ADDRESS_NO_PORT' });
  if (settings.dscp) options.push({ level: ip, name: v4 ? C.IP_TOS : C.IPV6_TCLASS, value: 'dscp', label: v4 ? 'IP_TOS' : 'IPV6_TCLASS' });
  if (settings.ttl) options.push({ level: ip, name: v4 ? C.IP_TTL : C.IPV6_UNICAST_HOPS, value: 'ttl', label: v4 ? 'IP_TTL' : 'IPV6_UNICAST_HOPS' });
  options.push({ level: C.IPPROTO_TCP, name: C.TCP_NODELAY, value: 'one', label: 'TCP_NODELAY' });
  if (firstBytes) options.push({ level: C.IPPROTO_TCP, name: C.TCP_QUICKACK, value: 'zero', label: 'TCP_QUICKACK' });
  options.push({ level: C.SOL_SOCKET, name: C.SO_LINGER, value: 'linger', label: 'SO_LINGER' });
  return options;
}

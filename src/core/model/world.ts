/**
 * Everything the model needs to know about one host: its ruleset, policy routing, sockets,
 * interfaces and the sysctls that change forwarding. Pure data, read from a snapshot.
 */
import { sameIp, type IpAddress } from '../net/address.js';
import { prefixContains } from '../net/prefix.js';
import type { Packet } from './packet.js';
import { lookupTable, type Routing } from './routing.js';
import type { Ruleset } from './ruleset.js';
import type { SocketEntry } from './sockets.js';

export interface InterfaceAddress {
  readonly ip: IpAddress;
  readonly prefixLength: number;
  readonly secondary: boolean;
  readonly tentative: boolean;
}

export interface Interface {
  readonly name: string;
  readonly addresses: readonly InterfaceAddress[];
}

export interface World {
  readonly ruleset: Ruleset;
  readonly routing: Routing;
  readonly sockets: readonly SocketEntry[];
  readonly interfaces: readonly Interface[];
  /** `net.ipv4.ip_forward` -> `1`, ... */
  readonly sysctls: Readonly<Record<string, string>>;
}

export function isLocalAddress(world: World, ip: IpAddress): boolean {
  if (world.interfaces.some((i) => i.addresses.some((a) => sameIp(a.ip, ip)))) return true;
  const route = lookupTable(world.routing.routes, 'local', ip.family, ip);
  return route?.type === 'local';
}

/** `fib daddr type`: the type of the destination in the local table (inet_dev_addr_type). */
export function fibAddressType(world: World, packet: Packet): string {
  const d = packet.daddr;
  if (d.family === 6) {
    if (prefixContains({ family: 6, start: 0xffn << 120n, length: 8 }, d)) return 'multicast';
    return isLocalAddress(world, d) ? 'local' : 'unicast';
  }
  if (prefixContains({ family: 4, start: 0xe0000000n, length: 4 }, d)) return 'multicast';
  if (d.value === 0xffffffffn) return 'broadcast';
  const route = lookupTable(world.routing.routes, 'local', 4, d);
  if (route && ['local', 'broadcast', 'multicast', 'anycast'].includes(route.type)) return route.type;
  return isLocalAddress(world, d) ? 'local' : 'unicast';
}

/** nf_tproxy_laddr4/6: the first primary address of the input interface, else the destination. */
export function tproxyLocalAddress(world: World, packet: Packet): IpAddress {
  const iface = world.interfaces.find((i) => i.name === packet.iif);
  const addr = iface?.addresses.find((a) => a.ip.family === packet.family && !a.secondary && !a.tentative);
  return addr?.ip ?? packet.daddr;
}

export function sysctl(world: World, key: string): string | undefined {
  return world.sysctls[key];
}

/** Whether a packet arriving on `iif` may be forwarded (IN_DEV_FORWARD / devconf_all->forwarding). */
export function forwardingEnabled(world: World, family: 4 | 6, iif: string | undefined): boolean | undefined {
  const keys = family === 4 ? [`net.ipv4.conf.${iif ?? 'all'}.forwarding`, 'net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding'] : ['net.ipv6.conf.all.forwarding'];
  for (const key of keys) {
    const v = world.sysctls[key];
    if (v !== undefined) return v.trim() !== '0';
  }
  return undefined;
}

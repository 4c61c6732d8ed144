/**
 * Representative packets for the checks: for each interface intercepted traffic arrives on and
 * each family, a client address on that interface's subnet and a remote address behind another
 * interface (or a documentation address), and for each intercepted port a first packet (TCP SYN,
 * UDP datagram). Pure.
 */
import type { Family } from '../net/constants.js';
import { formatIp, type IpAddress } from '../net/address.js';
import { prefixContains } from '../net/prefix.js';
import { TCP_FLAGS, type Packet } from '../model/packet.js';
import { isLocalAddress, type Interface, type World } from '../model/world.js';
import type { RulesConfig } from '../rules/config.js';

export interface ProbeSite {
  readonly iif: string;
  readonly family: Family;
  readonly saddr: IpAddress;
  readonly daddr: IpAddress;
}

const DOCUMENTATION_REMOTE: Readonly<Record<Family, IpAddress>> = {
  4: { family: 4, value: 0xc00002c8n }, // 192.0.2.200
  6: { family: 6, value: (0x20010db8n << 96n) | (0xffffn << 80n) | 0x200n }, // 2001:db8:ffff::200
};

/** Ports probed per transport at most (the first of each range). */
const MAX_PORTS = 4;

function subnets(iface: Interface, family: Family): { network: bigint; length: number }[] {
  const width = family === 4 ? 32 : 128;
  return iface.addresses
    .filter((a) => a.ip.family === family && !a.tentative && a.prefixLength < width - 1)
    .filter((a) => !(family === 6 && a.ip.value >> 118n === 0x3fan)) // fe80::/10: link-local
    .map((a) => {
      const mask = ((1n << BigInt(a.prefixLength)) - 1n) << BigInt(width - a.prefixLength);
      return { network: a.ip.value & mask, length: a.prefixLength };
    });
}

/** A host of the subnet that is not this host's own address. */
function hostIn(world: World, family: Family, subnet: { network: bigint; length: number }): IpAddress | undefined {
  for (let k = 2n; k < 64n; k++) {
    const ip = { family, value: subnet.network + k };
    if (!prefixContains({ family, start: subnet.network, length: subnet.length }, ip)) return undefined;
    if (!isLocalAddress(world, ip)) return ip;
  }
  return undefined;
}

export function probeSites(world: World, config: RulesConfig): ProbeSite[] {
  const candidates = world.interfaces.filter((i) => i.name !== 'lo' && (config.interfaces.length === 0 || config.interfaces.includes(i.name)));
  const sites: ProbeSite[] = [];
  for (const family of config.families) {
    for (const iface of candidates) {
      const own = subnets(iface, family)[0];
      const saddr = own && hostIn(world, family, own);
      if (!saddr) continue;
      const remoteSubnet = world.interfaces.filter((i) => i.name !== 'lo' && i.name !== iface.name).flatMap((i) => subnets(i, family))[0];
      const daddr = (remoteSubnet && hostIn(world, family, remoteSubnet)) ?? DOCUMENTATION_REMOTE[family];
      sites.push({ iif: iface.name, family, saddr, daddr });
    }
  }
  return sites;
}

export function probePorts(config: RulesConfig): { transport: 'tcp' | 'udp'; port: number }[] {
  return config.listeners.flatMap((l) => l.intercept.flatMap((spec) => spec.ports.slice(0, MAX_PORTS).map((range) => ({ transport: spec.transport, port: range.from }))));
}

export function probePacket(site: ProbeSite, transport: 'tcp' | 'udp', dport: number, mark = 0): Packet {
  return {
    family: site.family,
    l4proto: transport,
    saddr: site.saddr,
    daddr: site.daddr,
    sport: 40000,
    dport,
    tcpFlags: transport === 'tcp' ? TCP_FLAGS.syn! : 0,
    iif: site.iif,
    mark,
    dscp: 0,
    ecn: 0,
    ttl: 64,
    ctState: 'new',
  };
}

export function endpoint(ip: IpAddress, port: number): string {
  return ip.family === 6 ? `[${formatIp(ip)}]:${port}` : `${formatIp(ip)}:${port}`;
}

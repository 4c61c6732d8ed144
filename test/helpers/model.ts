// Small builders for model tests: nft JSON rule expressions, sockets, routing and worlds.
import { parseIp } from '../../src/core/net/address.js';
import { parseKernelPrefix } from '../../src/core/net/prefix.js';
import { parseNftJson } from '../../src/core/model/nft-json.js';
import { parsePacketText } from '../../src/core/model/packet-text.js';
import type { Packet } from '../../src/core/model/packet.js';
import type { IpRule, Route } from '../../src/core/model/routing.js';
import type { Ruleset } from '../../src/core/model/ruleset.js';
import type { SocketEntry, SocketState } from '../../src/core/model/sockets.js';
import type { World } from '../../src/core/model/world.js';

type J = Record<string, unknown>;

export const meta = (key: string): J => ({ meta: { key } });
export const payload = (protocol: string, field: string): J => ({ payload: { protocol, field } });
export const match = (left: unknown, right: unknown, op = '=='): J => ({ match: { op, left, right } });
export const accept: J = { accept: null };
export const drop: J = { drop: null };
export const ret: J = { return: null };
export const jump = (target: string): J => ({ jump: { target } });
export const goto = (target: string): J => ({ goto: { target } });
export const counter: J = { counter: { packets: 0, bytes: 0 } };
export const setMark = (value: unknown): J => ({ mangle: { key: meta('mark'), value } });
export const tproxy = (port: number, family?: string, addr?: string): J => ({ tproxy: { ...(family ? { family } : {}), ...(addr ? { addr } : {}), port } });

export interface ChainSpec {
  name: string;
  hook?: string;
  prio?: number;
  policy?: string;
  type?: string;
  rules: unknown[][];
}

/** nft -j output for tables of chains (rules as expression lists). */
export function nftJson(tables: { family?: string; name?: string; chains: ChainSpec[]; sets?: J[] }[]): unknown {
  const items: unknown[] = [{ metainfo: { json_schema_version: 1 } }];
  let handle = 1;
  for (const t of tables) {
    const family = t.family ?? 'inet';
    const table = t.name ?? 't';
    items.push({ table: { family, name: table, handle: handle++ } });
    for (const s of t.sets ?? []) items.push({ set: { family, table, ...s } });
    for (const c of t.chains) {
      items.push({ chain: { family, table, name: c.name, handle: handle++, ...(c.hook ? { type: c.type ?? 'filter', hook: c.hook, prio: c.prio ?? -150, policy: c.policy ?? 'accept' } : {}) } });
    }
    for (const c of t.chains) for (const expr of c.rules) items.push({ rule: { family, table, chain: c.name, handle: handle++, expr } });
  }
  return { nftables: items };
}

export function ruleset(tables: Parameters<typeof nftJson>[0]): Ruleset {
  return parseNftJson(nftJson(tables));
}

export function packet(text: string): Packet {
  return parsePacketText(text).packet;
}

export function sock(l4proto: 'tcp' | 'udp', state: SocketState, local: string, options: { remote?: string; transparent?: boolean; v6only?: boolean } = {}): SocketEntry {
  const ep = (t: string): { addr: ReturnType<typeof parseIp>; port: number } => {
    const i = t.lastIndexOf(':');
    return { addr: parseIp(t.slice(0, i).replace(/^\[|\]$/g, '')), port: Number(t.slice(i + 1)) };
  };
  const l = ep(local);
  return { l4proto, family: l.addr.family, state, local: l, ...(options.remote ? { remote: ep(options.remote) } : {}), transparent: options.transparent ?? false, ...(options.v6only !== undefined ? { v6only: options.v6only } : {}) };
}

export function rule(priority: number, spec: Partial<IpRule> & { from?: string; to?: string } = {}, family: 4 | 6 = 4): IpRule {
  const { from, to, ...rest } = spec;
  return { family, priority, not: false, action: 'lookup', table: 'main', ...rest, ...(from ? { from: parseKernelPrefix(from) } : {}), ...(to ? { to: parseKernelPrefix(to) } : {}) };
}

export function route(dst: string, spec: Partial<Route> = {}, family: 4 | 6 = 4): Route {
  return { family, table: 'main', type: 'unicast', metric: 0, ...spec, dst: parseKernelPrefix(dst, family) };
}

/** A router like the lab's: eth0 198.51.100.1 (clients), eth1 203.0.113.1 (servers), fwmark 1 -> table 100 local. */
export function routerWorld(over: Partial<World> = {}): World {
  const iface = (name: string, ...addrs: string[]): World['interfaces'][number] => ({
    name,
    addresses: addrs.map((a) => ({ ip: parseIp(a), prefixLength: a.includes(':') ? 64 : 24, secondary: false, tentative: false })),
  });
  return {
    ruleset: { tables: [] },
    routing: {
      rules: [rule(0, { table: 'local' }), rule(100, { fwmark: 1, fwmask: 1, table: '100' }), rule(32766), rule(0, { table: 'local' }, 6), rule(100, { fwmark: 1, fwmask: 1, table: '100' }, 6), rule(32766, {}, 6)],
      routes: [
        route('198.51.100.1', { table: 'local', type: 'local', dev: 'eth0' }),
        route('203.0.113.1', { table: 'local', type: 'local', dev: 'eth1' }),
        route('127.0.0.0/8', { table: 'local', type: 'local', dev: 'lo' }),
        route('198.51.100.0/24', { dev: 'eth0' }),
        route('203.0.113.0/24', { dev: 'eth1' }),
        route('default', { table: '100', type: 'local', dev: 'lo' }),
        route('2001:db8:1::1', { table: 'local', type: 'local', dev: 'eth0' }, 6),
        route('2001:db8:2::1', { table: 'local', type: 'local', dev: 'eth1' }, 6),
        route('::1', { table: 'local', type: 'local', dev: 'lo' }, 6),
        route('2001:db8:1::/64', { dev: 'eth0' }, 6),
        route('2001:db8:2::/64', { dev: 'eth1' }, 6),
        route('default', { table: '100', type: 'local', dev: 'lo' }, 6),
      ],
    },
    sockets: [],
    interfaces: [iface('lo', '127.0.0.1', '::1'), iface('eth0', '198.51.100.1', '2001:db8:1::1'), iface('eth1', '203.0.113.1', '2001:db8:2::1')],
    sysctls: { 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '1' },
    ...over,
  };
}

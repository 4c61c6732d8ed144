/**
 * Sysctls with their effective values per interface, as the kernel combines them:
 * rp_filter = max(all, interface); src_valid_mark and accept_local = all OR interface.
 *
 * Reverse-path validation (fib_validate_source) of a marked packet is modelled with the routing:
 * with policy rules or custom local routes (ours), the kernel always does the full check; it looks
 * up the route back to the source, with the packet's mark when src_valid_mark is on. Our own
 * fwmark rule makes that route local, which is refused (martian) unless accept_local is on; a
 * reverse route through another interface is refused by strict rp_filter (1).
 */
import { formatIp } from '../net/address.js';
import { describeRoute, routeLookup } from '../model/routing.js';
import type { World } from '../model/world.js';
import { finding, type Finding } from './finding.js';
import type { DoctorInput } from './input.js';
import { probeSites, type ProbeSite } from './probe-packets.js';
import { fwmarkRules } from './routing.js';

function num(world: World, key: string): number | undefined {
  const v = world.sysctls[key];
  return v === undefined || !/^-?\d+$/.test(v.trim()) ? undefined : Number(v);
}

export interface InterfaceConf {
  readonly rpFilter: number;
  readonly srcValidMark: boolean;
  readonly acceptLocal: boolean;
  /** Each value as `all X, IFACE Y`. */
  readonly shown: Readonly<Record<'rp_filter' | 'src_valid_mark' | 'accept_local', string>>;
}

export function interfaceConf(world: World, iface: string): InterfaceConf {
  const pair = (key: string): [number, number] => [num(world, `net.ipv4.conf.all.${key}`) ?? 0, num(world, `net.ipv4.conf.${iface}.${key}`) ?? 0];
  const show = (key: string): string => {
    const [a, i] = pair(key);
    return `all ${a}, ${iface} ${i}`;
  };
  const [rpAll, rpIf] = pair('rp_filter');
  const [svAll, svIf] = pair('src_valid_mark');
  const [alAll, alIf] = pair('accept_local');
  return {
    rpFilter: Math.max(rpAll, rpIf),
    srcValidMark: svAll !== 0 || svIf !== 0,
    acceptLocal: alAll !== 0 || alIf !== 0,
    shown: { rp_filter: show('rp_filter'), src_valid_mark: show('src_valid_mark'), accept_local: show('accept_local') },
  };
}

type ReversePath = { ok: true; seen: string } | { ok: false; errno: 'EINVAL' | 'EXDEV'; seen: string; trace: string[] };

/** fib_validate_source for a packet of `site` carrying `mark`, in its full-check form. */
export function reversePath(world: World, site: ProbeSite, mark: number, conf: InterfaceConf): ReversePath {
  if (conf.rpFilter === 0 && conf.acceptLocal) return { ok: true, seen: 'accept_local is on and rp_filter is off: no reverse-path check' };
  const flowMark = conf.srcValidMark ? mark : 0;
  const { decision, tried } = routeLookup(world.routing, { family: 4, saddr: site.daddr, daddr: site.saddr, iif: 'lo', mark: flowMark });
  const trace = tried.map((t) => `reverse lookup: ${t.result}`);
  const back = `the route back to ${formatIp(site.saddr)} (mark ${flowMark === 0 ? '0' : `0x${flowMark.toString(16)}`})`;
  if (decision.kind === 'none') return conf.rpFilter !== 0 ? { ok: false, errno: 'EXDEV', seen: `${back}: none`, trace } : { ok: true, seen: `${back}: none, rp_filter off` };
  const route = 'route' in decision && decision.route ? describeRoute(decision.route) : decision.kind;
  if (decision.kind !== 'unicast' && !(decision.kind === 'local' && conf.acceptLocal)) return { ok: false, errno: 'EINVAL', seen: `${back} is ${decision.kind} (${route})`, trace };
  const dev = 'route' in decision ? decision.route?.dev : undefined;
  if (dev === site.iif) return { ok: true, seen: `${back} leaves through ${site.iif} (${route})` };
  if (conf.rpFilter === 1) return { ok: false, errno: 'EXDEV', seen: `${back} is ${route}, not through ${site.iif}`, trace };
  return { ok: true, seen: `${back} is ${route}; rp_filter ${conf.rpFilter} accepts it` };
}

function reversePathFindings(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const { world, config } = input;
  if (!config.families.includes(4) || fwmarkRules(input, 4).length === 0) return out;
  for (const site of probeSites(world, config).filter((s) => s.family === 4)) {
    const conf = interfaceConf(world, site.iif);
    const r = reversePath(world, site, config.fwmark, conf);
    const at = `${site.iif}: rp_filter ${conf.rpFilter} (${conf.shown.rp_filter}), src_valid_mark ${conf.srcValidMark ? 1 : 0} (${conf.shown.src_valid_mark}), accept_local ${conf.acceptLocal ? 1 : 0}`;
    const loose = `net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.${site.iif}.rp_filter=2`;
    if (r.ok) {
      out.push(finding('sysctls', 'sysctl.rp_filter', 'pass', `${at}; ${r.seen}`, 'intercepted packets pass the reverse-path check'));
    } else if (r.errno === 'EINVAL' && conf.srcValidMark) {
      out.push(
        finding(
          'sysctls',
          'sysctl.src_valid_mark',
          'fail',
          `${at}; ${r.seen}`,
          'with src_valid_mark the reverse-path check uses the packet mark, and our fwmark rule routes it locally: the kernel drops every intercepted packet as a martian. accept_local accepts a local reverse route (WireGuard needs src_valid_mark, so it is left on)',
          `sysctl -w net.ipv4.conf.${site.iif}.accept_local=1${conf.rpFilter === 1 ? ` ${loose}` : ''}`,
          r.trace,
        ),
      );
    } else {
      out.push(
        finding(
          'sysctls',
          'sysctl.rp_filter',
          'fail',
          `${at}; ${r.seen}`,
          'the reverse-path filter (effective value: the larger of all and the interface) drops intercepted packets whose route back does not leave through the interface they came in on',
          `sysctl -w ${r.seen.includes(': none') ? loose.replace(/=2/g, '=0') : loose}`,
          r.trace,
        ),
      );
    }
  }
  return out;
}

export function checkSysctls(input: DoctorInput): Finding[] {
  const { world, config } = input;
  const out = reversePathFindings(input);
  if (config.families.includes(4)) {
    const fwd = world.sysctls['net.ipv4.ip_forward'];
    if (fwd === '0') out.push(finding('sysctls', 'sysctl.ip_forward', 'warn', 'net.ipv4.ip_forward = 0', 'intercepted traffic still reaches the proxy, but nothing else is routed through this host (a gateway forwards what it does not intercept)', 'sysctl -w net.ipv4.ip_forward=1'));
    else if (fwd !== undefined) out.push(finding('sysctls', 'sysctl.ip_forward', 'pass', `net.ipv4.ip_forward = ${fwd}`, 'traffic that is not intercepted is forwarded'));
  }
  if (config.families.includes(6)) {
    const fwd = world.sysctls['net.ipv6.conf.all.forwarding'];
    if (fwd === '0') out.push(finding('sysctls', 'sysctl.ipv6_forwarding', 'warn', 'net.ipv6.conf.all.forwarding = 0', 'IPv6 traffic that is not intercepted is not routed through this host', 'sysctl -w net.ipv6.conf.all.forwarding=1'));
    if (world.sysctls['net.ipv6.conf.all.disable_ipv6'] === '1') out.push(finding('sysctls', 'sysctl.disable_ipv6', 'warn', 'net.ipv6.conf.all.disable_ipv6 = 1', 'IPv6 interception is configured but IPv6 is disabled', 'sysctl -w net.ipv6.conf.all.disable_ipv6=0'));
  }
  const listen4 = config.listeners.map((l) => l.addresses[4]).find((a) => a?.startsWith('127.'));
  if (listen4 !== undefined) {
    const sites = probeSites(world, config).filter((s) => s.family === 4);
    const off = sites.filter((s) => (num(world, 'net.ipv4.conf.all.route_localnet') ?? 0) === 0 && (num(world, `net.ipv4.conf.${s.iif}.route_localnet`) ?? 0) === 0);
    if (off.length > 0) {
      out.push(finding('sysctls', 'sysctl.route_localnet', 'fail', `the proxy listens on ${listen4}; route_localnet is 0 on ${off.map((s) => s.iif).join(', ')}`, 'packets from other hosts may not be delivered to a loopback address without route_localnet', `sysctl -w ${off.map((s) => `net.ipv4.conf.${s.iif}.route_localnet=1`).join(' ')}`));
    }
  }
  const bridge = Object.entries(world.sysctls).filter(([k]) => k.startsWith('net.bridge.bridge-nf-call-'));
  if (bridge.length > 0) {
    const on = bridge.filter(([k, v]) => v === '1' && !k.endsWith('arptables'));
    const seen = `br_netfilter is loaded: ${bridge.map(([k, v]) => `${k.slice('net.bridge.'.length)} = ${v}`).join(', ')}`;
    if (on.length > 0) {
      out.push(finding('sysctls', 'sysctl.bridge-nf-call', 'warn', seen, 'bridged frames (Docker, VMs) pass through the IP hooks: our prerouting chain sees them, tproxy cannot deliver bridged frames locally, and the fail-closed rule drops them; limit interception with --iface, or turn the bridge calls off', `sysctl -w ${on.map(([k]) => `${k}=0`).join(' ')}`));
    } else {
      out.push(finding('sysctls', 'sysctl.bridge-nf-call', 'pass', seen, 'bridged frames do not enter the IP hooks'));
    }
  }
  return out;
}

/**
 * Policy routing for marked packets, checked with the model's routing (not by pattern): the
 * fwmark rule exists per family, its table has the local default route, and no earlier rule
 * (WireGuard's `not fwmark X lookup 51820`, Tailscale, mwan3) decides for the marked packets first.
 */
import type { Family } from '../net/constants.js';
import { formatIp } from '../net/address.js';
import { describeIpRule, describeRoute, lookupTable, routeLookup, type IpRule } from '../model/routing.js';
import { hex } from '../model/packet.js';
import { finding, type Finding } from './finding.js';
import type { DoctorInput } from './input.js';
import { probeSites, type ProbeSite } from './probe-packets.js';

const DOC_REMOTE: Readonly<Record<Family, ProbeSite>> = {
  4: { iif: 'eth0', family: 4, saddr: { family: 4, value: 0xc6336402n }, daddr: { family: 4, value: 0xcb0071c8n } },
  6: { iif: 'eth0', family: 6, saddr: { family: 6, value: (0x20010db8n << 96n) | 2n }, daddr: { family: 6, value: (0x20010db8n << 96n) | (0xffffn << 80n) | 0x200n } },
};

/** The ip rules that send packets carrying our fwmark to a table (what `fwmark M/M lookup T` does). */
export function fwmarkRules(input: DoctorInput, family: Family): IpRule[] {
  const { fwmark, fwmarkMask } = input.config;
  return input.world.routing.rules.filter(
    (r) => r.family === family && r.action === 'lookup' && r.fwmark !== undefined && !r.not && ((r.fwmask ?? 0xffffffff) & fwmarkMask) !== 0 && (((fwmark ^ r.fwmark) & (r.fwmask ?? 0xffffffff)) >>> 0) === 0,
  );
}

/**
 * `ip rule add` for our fwmark. For rules tproxy does not own, as a user writes it (no priority),
 * to the table that already holds a local default route, if one does.
 */
export function ruleCommand(input: DoctorInput, family: Family, priority: number, shadowed = false): string {
  const c = input.config;
  if (input.rulesBy === 'others' && !shadowed) {
    const local = input.world.routing.routes.find((r) => r.family === family && r.type === 'local' && r.dst.length === 0 && !['local', '255', 'main', '254'].includes(r.table));
    return `ip -${family} rule add fwmark ${hex(c.fwmark)}/${hex(c.fwmarkMask)} lookup ${local?.table ?? c.routeTable}`;
  }
  return `ip -${family} rule add fwmark ${hex(c.fwmark)}/${hex(c.fwmarkMask)} lookup ${c.routeTable} priority ${priority}`;
}

export function checkRouting(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const c = input.config;
  const sites = probeSites(input.world, c);
  for (const family of c.families) {
    const v = `ipv${family}`;
    const site = sites.find((s) => s.family === family) ?? DOC_REMOTE[family];
    const ours = fwmarkRules(input, family);
    if (ours.length === 0) {
      out.push(
        finding('routing', `routing.fwmark-rule.${v}`, 'fail', `no IPv${family} ip rule sends fwmark ${hex(c.fwmark)}/${hex(c.fwmarkMask)} to a table`, 'marked packets are routed like any other: forwarded, and ip_forward drops a packet that tproxy gave a socket', ruleCommand(input, family, c.rulePriority)),
      );
      continue;
    }
    const first = ours[0]!;
    const table = first.table ?? 'main';
    out.push(finding('routing', `routing.fwmark-rule.${v}`, 'pass', `ip rule ${describeIpRule(first)}`, 'marked packets are looked up in their own table'));
    const route = lookupTable(input.world.routing.routes, table, family, site.daddr);
    if (route?.type !== 'local') {
      out.push(
        finding('routing', `routing.local-route.${v}`, 'fail', `table ${table} has ${route ? describeRoute(route) : 'no route'} for ${formatIp(site.daddr)}, not a local default route`, 'the fwmark rule only makes marked packets local when its table routes every destination to this host', `ip -${family} route add local default dev lo table ${table}`),
      );
      continue;
    }
    out.push(finding('routing', `routing.local-route.${v}`, 'pass', describeRoute(route), 'marked packets are delivered locally'));
    const { decision, tried } = routeLookup(input.world.routing, { family, saddr: site.saddr, daddr: site.daddr, iif: site.iif, mark: c.fwmark });
    if (decision.kind === 'local') {
      out.push(finding('routing', `routing.shadowed.${v}`, 'pass', `a packet with mark ${hex(c.fwmark)} from ${formatIp(site.saddr)} to ${formatIp(site.daddr)} routes locally (${describeRoute(decision.route)})`, 'no earlier ip rule takes marked packets elsewhere'));
      continue;
    }
    const decider = decision.kind === 'none' ? undefined : decision.rule;
    const trace = tried.map((t) => `ip rule ${describeIpRule(t.rule)}: ${t.result}`);
    const result = decision.kind === 'none' ? 'no route' : decision.kind === 'unicast' ? `forwarded (${describeRoute(decision.route)})` : decision.kind;
    const fix = decider && decider.priority > 0 && decider.priority < first.priority ? ruleCommand(input, family, decider.priority - 1, true) : undefined;
    out.push(
      finding(
        'routing',
        `routing.shadowed.${v}`,
        'fail',
        `ip rule ${decider ? describeIpRule(decider) : '?'} decides before ${describeIpRule(first)}: a packet with mark ${hex(c.fwmark)} to ${formatIp(site.daddr)} is ${result}`,
        'an earlier rule (VPN or multi-WAN style) catches the marked packets and routes them elsewhere; tproxy gave them a socket, so ip_forward drops them',
        fix,
        trace,
      ),
    );
  }
  return out;
}

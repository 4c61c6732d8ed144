/**
 * Synthetic probes: for each interface intercepted traffic arrives on, each family and each
 * intercepted port, the model follows a first packet (TCP SYN, UDP datagram) through this host's
 * hooks, routing and socket lookup. It must be delivered to a transparent socket by tproxy; when it
 * is not, the finding carries the trace, and a drop by a chain that is not ours is named with it.
 */
import { explainPacket } from '../model/explain.js';
import { describeOutcome } from '../model/format.js';
import { finding, type Finding } from './finding.js';
import type { DoctorInput } from './input.js';
import { endpoint, probePacket, probePorts, probeSites } from './probe-packets.js';
import { interfaceConf, reversePath } from './sysctls.js';
import { formatTrace } from './trace-text.js';
import { addCommand, iptablesTool, retargetCommand, takes } from './foreign.js';
import type { Packet } from '../model/packet.js';

/**
 * For rules tproxy does not own: why a probe misses the proxy when a TPROXY rule is the reason,
 * and the command, in the user's own family, that fixes that rule (or adds the missing one).
 */
function foreignFix(input: DoctorInput, packet: Packet): { why: string; fix?: string } | undefined {
  const c = input.config;
  const listener = c.listeners.find((l) => l.families.includes(packet.family) && l.intercept.some((s) => s.transport === packet.l4proto && s.ports.some((r) => r.from <= packet.dport && packet.dport <= r.to)));
  if (!listener) return undefined;
  const taking = input.foreign.filter((r) => takes(input.world, r, packet));
  const mark = { value: c.fwmark, mask: c.fwmarkMask };
  const transport = packet.l4proto === 'tcp' ? 'tcp' : 'udp';
  if (taking.length === 0) {
    const like = input.foreign.find((r) => r.table.family === 'inet' || r.table.family === (packet.family === 4 ? 'ip' : 'ip6')) ?? input.foreign[0];
    return { why: `no TPROXY rule in force takes ${transport} port ${packet.dport} (IPv${packet.family}) to the proxy's port ${listener.port}`, fix: addCommand(input.snapshot, like, packet.family, transport, packet.dport, listener.port, mark) };
  }
  const first = taking[0]!;
  if (first.tproxy.port !== undefined && first.tproxy.port !== listener.port) {
    const fix = retargetCommand(input.snapshot, first, listener.port);
    return { why: `${first.where} sends it to port ${first.tproxy.port}, but the proxy listens on ${listener.port}`, ...(fix ? { fix } : {}) };
  }
  return undefined;
}

export function checkProbes(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const ours = `inet ${input.config.tableName} `;
  const foreign = new Set<string>();
  const sites = probeSites(input.world, input.config);
  for (const family of input.config.families.filter((f) => !sites.some((s) => s.family === f))) {
    out.push(finding('probes', `probe.sites.ipv${family}`, 'warn', `no interface${input.config.interfaces.length > 0 ? ` of ${input.config.interfaces.join(', ')}` : ''} has an IPv${family} subnet to probe from`, 'the synthetic probes (and the reverse-path check) need a client subnet on an intercepting interface: nothing was probed for this family'));
  }
  for (const site of sites) {
    for (const { transport, port } of probePorts(input.config)) {
      const packet = probePacket(site, transport, port);
      const id = `probe.${transport}.ipv${site.family}.${port}`;
      const what = `${transport} ${endpoint(site.saddr, packet.sport)} -> ${endpoint(site.daddr, port)} iif ${site.iif}${transport === 'tcp' ? ' syn' : ''}`;
      let e;
      try {
        e = explainPacket(input.world, packet);
      } catch (error) {
        out.push(finding('probes', id, 'warn', `${what}: the model could not follow it: ${(error as Error).message}`, 'the ruleset has something the model cannot evaluate'));
        continue;
      }
      // The model's path has no reverse-path validation: it runs in routing, before delivery.
      const rpf = site.family === 4 && e.outcome.kind === 'delivered' ? reversePath(input.world, site, e.packet.mark, interfaceConf(input.world, site.iif)) : undefined;
      const ok = e.outcome.kind === 'delivered' && e.outcome.via === 'tproxy' && e.socket?.transparent === true && rpf?.ok !== false;
      const result = rpf && !rpf.ok ? `DROPPED in routing by the reverse-path check (${rpf.errno}): ${rpf.seen}; see sysctl.rp_filter / sysctl.src_valid_mark` : describeOutcome(e.outcome, e);
      if (ok) {
        out.push(finding('probes', id, e.uncertain ? 'warn' : 'pass', `${what}: ${result}`, e.uncertain ? 'part of the path is not modelled: the result may differ' : 'the model follows it to the proxy'));
        continue;
      }
      const others = input.rulesBy === 'others' ? foreignFix(input, packet) : undefined;
      out.push(finding('probes', id, 'fail', `${what}: ${result}`, `this packet does not reach the proxy${others ? `: ${others.why}` : ''}; the trace shows the step where it goes elsewhere`, others?.fix, formatTrace(e)));
      if (e.outcome.kind !== 'dropped' || e.outcome.stage !== 'netfilter') continue;
      const step = [...e.trace].reverse().find((s) => s.chain !== undefined && (s.verdict?.startsWith('drop') || s.verdict?.startsWith('reject')));
      // A TPROXY target that finds no socket drops too: that is the probe's finding, not another table's drop.
      if (!step?.chain || step.chain.startsWith(ours) || step.text.includes('drop with TPROXY:') || foreign.has(`${step.chain} ${step.handle ?? ''}`)) continue;
      foreign.add(`${step.chain} ${step.handle ?? ''}`);
      const [family, table, chain] = step.chain.split(' ');
      const position = / rule (\d+)/.exec(step.text)?.[1];
      const fix =
        step.stage !== 'rule'
          ? undefined
          : step.handle !== undefined
            ? `nft delete rule ${family!} ${table!} ${chain!} handle ${step.handle}`
            : position !== undefined
              ? `${iptablesTool(input.snapshot, family === 'ip6' ? 6 : 4, table!.endsWith('[legacy]'))} -t ${table!.replace('[legacy]', '')} -D ${chain!} ${position}`
              : undefined;
      out.push(
        finding('rules', 'rules.foreign-drop', 'fail', `${step.text} (${what})`, 'a chain of another table drops intercepted traffic before it reaches the proxy; allow the intercepted ports there, or remove the rule', fix),
      );
    }
  }
  return out;
}

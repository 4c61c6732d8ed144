/** `tproxy explain PACKET`: what the kernel does with one packet, and why, from the live host or a snapshot. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { TproxyError } from '../../core/errors.js';
import { explainPacket } from '../../core/model/explain.js';
import { explanationToJson, formatExplanation } from '../../core/model/format.js';
import { PACKET_FORM, parsePacketText } from '../../core/model/packet-text.js';
import { checkSnapshot, worldFromSnapshot, type Snapshot } from '../../core/model/snapshot.js';
import { ProcessRunner, type CommandRunner } from '../../sys/exec.js';
import { takeSnapshot } from '../../sys/snapshot.js';
import type { CliIo, Command } from '../io.js';
import { configFrom } from '../selection.js';
import { routingOf } from '../../core/config/routing-of.js';
import type { TproxyConfig } from '../../core/config/tproxy-config.js';
import { formatIp } from '../../core/model/address.js';
import type { Packet } from '../../core/model/packet.js';
import { explainRoute, formatRouteExplanation, routeExplanationToJson, type RouteExplanation } from '../../core/route/explain.js';
import { normalizeDnsName } from '../../core/sniff/dns-name.js';

const USAGE = `Usage: tproxy explain [--json] [--snapshot FILE] PACKET

Follows one packet through this host's netfilter hooks, policy routing and socket lookup, as the
kernel would, and says where it ends: delivered to which socket, forwarded out of which
interface, or dropped and by what; with the packet as it leaves and every step on the way.

PACKET: ${PACKET_FORM}
  tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 syn
  udp [2001:db8:1::10]:5353 -> [2001:db8:2::20]:53 iif eth0 mark 0x1
  tcp 192.0.2.1:40000 -> 203.0.113.20:443 local        (sent by a process on this host)

  --snapshot FILE   explain against a saved state (tproxy snapshot > FILE) instead of this host
  --config FILE     also the route and outbound the flow takes (tproxy run's configuration file):
                    on the listener the packet reaches (its socket's port), else the one that
                    intercepts its port, or --listener NAME
  --sni NAME, --host NAME   the name the client asks for (TLS SNI, HTTP Host), for name routes
  --json            print the explanation as JSON (outcome, socket, oif, packet, trace; route)
  --help            this help
`;

/** The route of the packet's flow on its listener: named, else the one its socket belongs to, else the one intercepting its port. */
function routeOfPacket(config: TproxyConfig, packet: Packet, socketPort: number | undefined, listenerName: string | undefined, name: string | undefined): RouteExplanation | undefined {
  const transport = packet.l4proto === 'udp' ? 'udp' : 'tcp';
  const listener =
    listenerName !== undefined
      ? config.listeners.find((l) => l.name === listenerName)
      : (config.listeners.find((l) => l.port === socketPort && l.intercept.some((s) => s.transport === transport)) ??
        config.listeners.find((l) => l.intercept.some((s) => s.transport === transport && s.ports.some((r) => packet.dport >= r.from && packet.dport <= r.to))));
  if (listenerName !== undefined && !listener) throw new TproxyError('ERR_INVALID_ARGUMENT', `--listener ${listenerName}: no such listener in the configuration (${config.listeners.map((l) => l.name).join(', ')})`);
  const routing = listener && routingOf(config).find((r) => r.listener === listener.name);
  if (!routing) return undefined;
  return explainRoute(routing, { protocol: transport, source: formatIp(packet.saddr), destination: formatIp(packet.daddr), destinationPort: packet.dport, ...(name === undefined ? {} : { name }) });
}

export function explainCommand(runner: CommandRunner = new ProcessRunner()): Command {
  return {
    name: 'explain',
    summary: 'explain step by step what the kernel does with a packet and whether it reaches the proxy',
    usage: USAGE,
    async run(argv: string[], io: CliIo): Promise<number> {
      // The packet's `->` looks like an option to parseArgs: keep it apart as a placeholder.
      const ARROW = '\u2192';
      const { values, positionals: words } = parseArgs({
        args: argv.map((a) => (a === '->' ? ARROW : a)),
        options: {
          json: { type: 'boolean', default: false },
          snapshot: { type: 'string' },
          config: { type: 'string' },
          listener: { type: 'string' },
          sni: { type: 'string' },
          host: { type: 'string' },
          help: { type: 'boolean', default: false },
        },
        allowPositionals: true,
        strict: true,
      });
      const positionals = words.map((w) => (w === ARROW ? '->' : w));
      if (values.help) {
        io.out(USAGE);
        return 0;
      }
      if (positionals.length === 0) throw new TproxyError('ERR_INVALID_ARGUMENT', `tproxy explain needs a packet: ${PACKET_FORM}`);
      const { packet, origin } = parsePacketText(positionals.join(' '));
      if (values.sni !== undefined && values.host !== undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', '--sni and --host both name the flow: give one');
      const name = values.sni ?? values.host;
      if ((name !== undefined || values.listener !== undefined) && values.config === undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', '--sni, --host and --listener need --config FILE (the routes are in it)');
      const normalized = name === undefined ? undefined : normalizeDnsName(name);
      if (name !== undefined && normalized === undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', `${values.sni !== undefined ? '--sni' : '--host'} ${JSON.stringify(name)}: not a DNS name (a sniffed name that is not one routes without a name)`);
      const config = values.config === undefined ? undefined : await configFrom({ config: values.config });
      let snapshot: Snapshot;
      if (values.snapshot !== undefined) {
        let text: string;
        try {
          text = await readFile(values.snapshot, 'utf8');
        } catch (error) {
          throw new TproxyError('ERR_INVALID_ARGUMENT', `cannot read snapshot ${values.snapshot}: ${(error as Error).message}`, {}, { cause: error });
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch (error) {
          throw new TproxyError('ERR_INVALID_ARGUMENT', `snapshot ${values.snapshot} is not JSON: ${(error as Error).message}`, {}, { cause: error });
        }
        snapshot = checkSnapshot(parsed);
      } else {
        snapshot = await takeSnapshot(runner);
      }
      const explanation = explainPacket(worldFromSnapshot(snapshot), packet, { origin });
      const route = config && routeOfPacket(config, packet, explanation.socket?.local.port, values.listener, normalized);
      if (values.json) io.out(`${JSON.stringify({ ...explanationToJson(explanation), ...(route ? { route: routeExplanationToJson(route) } : {}) }, null, 2)}\n`);
      else io.out(formatExplanation(packet, explanation) + (route ? formatRouteExplanation(route) : ''));
      for (const [source, reason] of Object.entries(snapshot.errors)) io.err(`tproxy explain: could not read ${source}: ${reason}\n`);
      return 0;
    },
  };
}

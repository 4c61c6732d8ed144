/** `tproxy explain PACKET`: what the kernel does with one packet, and why, from the live host or a snapshot. */
import { readFile } from 'node:fs/promises';
import { HELP_OPTION, parseCommandLine } from '../../core/cli-options.js';
import { TproxyError } from '../../core/errors.js';
import { checkExplainRequest, explainRequest, type ExplainRequest } from '../../core/model/explain-request.js';
import { PACKET_FORM } from '../../core/model/packet-text.js';
import { checkSnapshot, type Snapshot } from '../../core/model/snapshot.js';
import { ProcessRunner, type CommandRunner } from '../../sys/exec.js';
import { takeSnapshot } from '../../sys/snapshot.js';
import { type CliIo, type Command, usageText } from '../io.js';
import { configFrom } from '../selection.js';

const OPTIONS = [
  { name: 'snapshot', metavar: 'FILE', help: 'explain against a saved state (tproxy snapshot > FILE) instead of this host' },
  { name: 'config', metavar: 'FILE', help: "also the route and outbound the flow takes (tproxy run's configuration file): on the listener the packet reaches (its socket's port), else the one that intercepts its port, or --listener NAME" },
  { name: 'listener', metavar: 'NAME', help: 'the listener whose routes to follow (with --config)' },
  { name: 'sni', metavar: 'NAME', help: 'the name the client asks for in its TLS ClientHello, for name routes' },
  { name: 'host', metavar: 'NAME', help: 'the name the client asks for in its HTTP Host header, for name routes' },
  { name: 'json', help: 'print the explanation as JSON (outcome, socket, oif, packet, trace; route)' },
  HELP_OPTION,
] as const;

const SYNOPSIS = ['tproxy explain [--json] [--snapshot FILE] [--config FILE [--sni NAME | --host NAME] [--listener NAME]] PACKET'];

const DESCRIPTION = `Follows one packet through this host's netfilter hooks, policy routing and socket lookup, as the
kernel would (rules of nftables, iptables-nft and iptables-legacy, whoever wrote them; the first
line says which were read), and says where it ends: delivered to which socket, forwarded out of which
interface, or dropped and by what; with the packet as it leaves and every step on the way.

PACKET: ${PACKET_FORM}
  tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 syn
  udp [2001:db8:1::10]:5353 -> [2001:db8:2::20]:53 iif eth0 mark 0x1
  tcp 192.0.2.1:40000 -> 203.0.113.20:443 local        (sent by a process on this host)
`;

const USAGE = usageText(SYNOPSIS, DESCRIPTION, OPTIONS);

export function explainCommand(runner: CommandRunner = new ProcessRunner()): Command {
  return {
    name: 'explain',
    summary: 'explain step by step what the kernel does with a packet and whether it reaches the proxy',
    usage: USAGE,
    synopsis: SYNOPSIS,
    description: DESCRIPTION,
    options: OPTIONS,
    operand: 'PACKET',
    async run(argv: string[], io: CliIo): Promise<number> {
      // The packet's `->` looks like an option to parseArgs: keep it apart as a placeholder.
      const ARROW = '\u2192';
      const { values, positionals: words } = parseCommandLine(argv.map((a) => (a === '->' ? ARROW : a)), OPTIONS, true);
      const positionals = words.map((w) => (w === ARROW ? '->' : w));
      if (values.help) {
        io.out(USAGE);
        return 0;
      }
      if (positionals.length === 0) throw new TproxyError('ERR_INVALID_ARGUMENT', `tproxy explain needs a packet: ${PACKET_FORM}`);
      const request: ExplainRequest = { packet: positionals.join(' '), ...(values.sni !== undefined ? { sni: values.sni } : {}), ...(values.host !== undefined ? { host: values.host } : {}), ...(values.listener !== undefined ? { listener: values.listener } : {}) };
      // Refused before the host is read (explainRequest checks it again).
      checkExplainRequest(request, values.config !== undefined);
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
      const answer = explainRequest(snapshot, values.snapshot !== undefined ? `state: snapshot ${values.snapshot}` : 'state: this host', request, config);
      if (values.json) io.out(`${JSON.stringify(answer.json, null, 2)}\n`);
      else io.out(answer.text);
      for (const [source, reason] of Object.entries(snapshot.errors)) io.err(`tproxy explain: could not read ${source}: ${reason}\n`);
      return 0;
    },
  };
}

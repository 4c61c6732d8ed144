/** `tproxy explain PACKET`: what the kernel does with one packet, and why, from the live host or a snapshot. */
import { readFile } from 'node:fs/promises';
import { TproxyError } from '../../core/errors.js';
import { explainPacket } from '../../core/model/explain.js';
import { explanationToJson, formatExplanation } from '../../core/model/format.js';
import { PACKET_FORM, parsePacketText } from '../../core/model/packet-text.js';
import { checkSnapshot, worldFromSnapshot, type Snapshot } from '../../core/model/snapshot.js';
import { ProcessRunner, type CommandRunner } from '../../sys/exec.js';
import { takeSnapshot } from '../../sys/snapshot.js';
import type { CliIo, Command } from '../io.js';
import { parseCommandLine } from '../args.js';

const USAGE = `Usage: tproxy explain [--json] [--snapshot FILE] PACKET

Follows one packet through this host's netfilter hooks, policy routing and socket lookup, as the
kernel would, and says where it ends: delivered to which socket, forwarded out of which
interface, or dropped and by what; with the packet as it leaves and every step on the way.

PACKET: ${PACKET_FORM}
  tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 syn
  udp [2001:db8:1::10]:5353 -> [2001:db8:2::20]:53 iif eth0 mark 0x1
  tcp 192.0.2.1:40000 -> 203.0.113.20:443 local        (sent by a process on this host)

  --snapshot FILE   explain against a saved state (tproxy snapshot > FILE) instead of this host
  --json            print the explanation as JSON (outcome, socket, oif, packet, trace)
  --help            this help
`;

export function explainCommand(runner: CommandRunner = new ProcessRunner()): Command {
  return {
    name: 'explain',
    summary: 'explain step by step what the kernel does with a packet and whether it reaches the proxy',
    usage: USAGE,
    async run(argv: string[], io: CliIo): Promise<number> {
      // The packet's `->` looks like an option to parseArgs: keep it apart as a placeholder.
      const ARROW = '\u2192';
      const { values, positionals: words } = parseCommandLine({
        args: argv.map((a) => (a === '->' ? ARROW : a)),
        options: { json: { type: 'boolean', default: false }, snapshot: { type: 'string' }, help: { type: 'boolean', default: false } },
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
      if (values.json) io.out(`${JSON.stringify(explanationToJson(explanation), null, 2)}\n`);
      else io.out(formatExplanation(packet, explanation));
      for (const [source, reason] of Object.entries(snapshot.errors)) io.err(`tproxy explain: could not read ${source}: ${reason}\n`);
      return 0;
    },
  };
}

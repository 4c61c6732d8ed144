/** `tproxy snapshot`: save what the model needs to explain packets on this host, as JSON. */
import { takeSnapshot } from '../../sys/snapshot.js';
import type { CommandRunner } from '../../sys/exec.js';
import { ProcessRunner } from '../../sys/exec.js';
import type { CliIo, Command } from '../io.js';
import { parseCommandLine } from '../args.js';

const USAGE = `Usage: tproxy snapshot [--help] > state.json

Saves this host's nftables ruleset (nft -j), iptables mangle tables, ip rules and routes (IPv4 and
IPv6), addresses, sockets with their IP_TRANSPARENT flag (ss --inet-sockopt) and forwarding
sysctls (also per interface), and for doctor: kernel feature probes (nft --check, which changes
nothing), loaded modules and xtables extensions, the capabilities of socket owners and table
comments, as one JSON document, for \`tproxy explain\` / \`tproxy doctor --snapshot FILE\` and bug
reports.
Sources that cannot be read are listed under "errors". Needs root to see every socket and rule.
`;

export function snapshotCommand(runner: CommandRunner = new ProcessRunner()): Command {
  return {
    name: 'snapshot',
    summary: 'save the ruleset, routes, sockets and sysctls of this host as JSON',
    usage: USAGE,
    async run(argv: string[], io: CliIo): Promise<number> {
      const { values } = parseCommandLine({ args: argv, options: { help: { type: 'boolean', default: false } }, strict: true });
      if (values.help) {
        io.out(USAGE);
        return 0;
      }
      const snapshot = await takeSnapshot(runner);
      io.out(`${JSON.stringify(snapshot, null, 2)}\n`);
      for (const [source, reason] of Object.entries(snapshot.errors)) io.err(`tproxy snapshot: could not read ${source}: ${reason}\n`);
      return 0;
    },
  };
}

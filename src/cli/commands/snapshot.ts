/** `tproxy snapshot`: save what the model needs to explain packets on this host, as JSON. */
import { HELP_OPTION } from '../../core/cli-options.js';
import { takeSnapshot } from '../../sys/snapshot.js';
import type { CommandRunner } from '../../sys/exec.js';
import { ProcessRunner } from '../../sys/exec.js';
import { type Command, defineCommand } from '../io.js';

const OPTIONS = [HELP_OPTION] as const;

const SYNOPSIS = ['tproxy snapshot [--help] > state.json'];

const DESCRIPTION = `Saves this host's nftables ruleset (nft -j), iptables mangle tables, ip rules and routes (IPv4 and
IPv6), addresses, sockets with their IP_TRANSPARENT flag (ss --inet-sockopt) and forwarding
sysctls (also per interface), and for doctor: kernel feature probes (nft --check, which changes
nothing), loaded modules and xtables extensions, the capabilities of socket owners and table
comments, as one JSON document, for \`tproxy explain\` / \`tproxy doctor --snapshot FILE\` and bug
reports.
Sources that cannot be read are listed under "errors". Needs root to see every socket and rule.
`;

export function snapshotCommand(runner: CommandRunner = new ProcessRunner()): Command {
  return defineCommand({
    name: 'snapshot',
    summary: 'save the ruleset, routes, sockets and sysctls of this host as JSON',
    synopsis: SYNOPSIS,
    description: DESCRIPTION,
    options: OPTIONS,
    async run(_line, io): Promise<number> {
      const snapshot = await takeSnapshot(runner);
      io.out(`${JSON.stringify(snapshot, null, 2)}\n`);
      for (const [source, reason] of Object.entries(snapshot.errors)) io.err(`tproxy snapshot: could not read ${source}: ${reason}\n`);
      return 0;
    },
  });
}

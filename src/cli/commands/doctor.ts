/** `tproxy doctor`: find what stops TPROXY from working on this host, and the command that fixes it. */
import { readFile } from 'node:fs/promises';
import { doctorInput, shellWord, type FixCommands } from '../../core/doctor/input.js';
import { diagnose, formatReport, reportToJson } from '../../core/doctor/report.js';
import { TproxyError } from '../../core/errors.js';
import { checkSnapshot, type Snapshot } from '../../core/model/snapshot.js';
import { configFlags } from '../../core/config/flags.js';
import { rulesConfigOf } from '../../core/config/rules-of.js';
import type { RulesConfig } from '../../core/rules/config.js';
import { planRules } from '../../core/rules/plan.js';
import { ProcessRunner, type CommandRunner } from '../../sys/exec.js';
import { takeSnapshot } from '../../sys/snapshot.js';
import type { CliIo, Command } from '../io.js';
import { RULES_FLAGS, configFrom, selectionHelp, selectionOptions } from '../selection.js';
import { parseCommandLine } from '../args.js';
import { maskProxyUrl } from '../../core/upstream/proxy-url.js';

/** Every option of `tproxy run` (they say what to expect, and reappear in the fix commands). */
const RUN_FLAGS = configFlags();
const OPTIONS = { ...selectionOptions(RUN_FLAGS), json: { type: 'boolean' }, snapshot: { type: 'string' }, help: { type: 'boolean' } } as const;
/** The options `tproxy rules apply` takes (the rules' part of the configuration, and --config). */
const RULES_OPTION_NAMES = new Set(Object.keys(selectionOptions(RULES_FLAGS)));

const USAGE = `Usage: tproxy doctor [--json] [--snapshot FILE] [options of tproxy run]

Checks everything TPROXY depends on, on this host (or in a saved snapshot), and says for each
problem what was seen, why it matters and the command that fixes it:
  kernel      nftables tproxy / socket / fib expressions (probed with nft --check, nothing is
              changed), xtables TPROXY and socket, IPv4 / IPv6 policy routing
  privileges  CAP_NET_ADMIN (and CAP_NET_RAW) of the proxy process; doctor's own
  sysctls     rp_filter (max of all and the interface), src_valid_mark, accept_local, forwarding,
              route_localnet, bridge-nf-call-* when br_netfilter is loaded
  routing     the fwmark rule per family, the local route of its table, earlier rules that take
              marked packets elsewhere (VPN / multi-WAN style), found with the model's routing
  rules       our table against the plan (divert, upstream exclusion, fail closed), chains of other
              tables that drop intercepted traffic, mark collisions, divert rules that catch SYNs
  sockets     a transparent listener on the redirect port; local services on intercepted UDP ports
  probes      for each interface, family and intercepted port, a first packet followed by the
              model (tproxy explain); a failing probe shows its trace
Give the options you run tproxy with (any option of tproxy run is accepted: they say which ports,
families, marks and upstream mode to expect, and appear in the fix commands); when
our table exists, its recorded fwmark, route table and rule priority are used.

Exit status: 0 healthy (warnings allowed), 1 problems found, 2 could not inspect (not root, or a
source could not be read).

  --snapshot FILE        judge a saved state (tproxy snapshot > FILE) instead of this host
  --json                 print the report as JSON (status, counts, findings with id, severity,
                         seen, why, fix, trace)
${selectionHelp(RUN_FLAGS)}
  --help                 this help
`;

/** The options doctor was given, as words for a fix command: all of them (run), or the rule selection only (rules apply). */
function commandArgs(argv: readonly string[], only?: ReadonlySet<string>): string[] {
  const { tokens } = parseCommandLine({ args: [...argv], options: OPTIONS, strict: true, tokens: true });
  const out: string[] = [];
  for (const t of tokens) {
    if (t.kind !== 'option' || ['json', 'snapshot', 'help'].includes(t.name) || (only && !only.has(t.name))) continue;
    // A proxy URL's password is not printed: the command shows USER:***@ to fill in.
    const value = t.value !== undefined && (t.name as string) === 'upstream-proxy' ? maskProxyUrl(t.value) : t.value;
    out.push(t.rawName, ...(value !== undefined && !t.inlineValue ? [value] : []));
    if (t.inlineValue) out[out.length - 1] = `${t.rawName}=${value ?? ''}`;
  }
  return out.map(shellWord);
}

async function readSnapshot(path: string): Promise<Snapshot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `cannot read snapshot ${path}: ${(error as Error).message}`, {}, { cause: error });
  }
  try {
    return checkSnapshot(JSON.parse(text));
  } catch (error) {
    if (error instanceof TproxyError) throw error;
    throw new TproxyError('ERR_INVALID_ARGUMENT', `snapshot ${path} is not JSON: ${(error as Error).message}`, {}, { cause: error });
  }
}

export interface DoctorOptions {
  readonly values: { json: boolean; snapshot?: string; help: boolean };
  readonly config: RulesConfig;
  readonly commands: FixCommands;
  readonly upstream: 'direct' | 'transparent';
}

/**
 * The command line of doctor (with --config, the file too): what to expect on the host, and the
 * fix commands it prints. Any listener in transparent mode makes the divert rule a must.
 */
export async function doctorOptions(argv: readonly string[]): Promise<DoctorOptions> {
  const { values } = parseCommandLine({ args: [...argv], options: OPTIONS, strict: true });
  const flags = { json: values.json === true, help: values.help === true, ...(typeof values.snapshot === 'string' ? { snapshot: values.snapshot } : {}) };
  if (flags.help) return { values: flags, config: rulesConfigOf(await configFrom({})), commands: { apply: '', run: '' }, upstream: 'direct' };
  const tproxy = await configFrom(values);
  const config = rulesConfigOf(tproxy);
  planRules(config);
  const upstream = tproxy.listeners.some((l) => l.upstream === 'transparent') ? 'transparent' : 'direct';
  const withArgs = (command: string, args: string[]): string => [command, ...args].join(' ');
  const commands = { apply: withArgs('tproxy rules apply', commandArgs(argv, RULES_OPTION_NAMES)), run: withArgs('tproxy run', commandArgs(argv)) };
  return { values: flags, config, commands, upstream };
}

export function doctorCommand(runner: CommandRunner = new ProcessRunner()): Command {
  return {
    name: 'doctor',
    summary: 'find what stops TPROXY from working on this host, and how to fix it',
    usage: USAGE,
    async run(argv: string[], io: CliIo): Promise<number> {
      const { values, config, commands, upstream } = await doctorOptions(argv);
      if (values.help) {
        io.out(USAGE);
        return 0;
      }
      const snapshot = values.snapshot !== undefined ? await readSnapshot(values.snapshot) : await takeSnapshot(runner);
      const report = diagnose(doctorInput(snapshot, config, commands, upstream));
      io.out(values.json ? `${JSON.stringify(reportToJson(report), null, 2)}\n` : formatReport(report));
      return report.status;
    },
  };
}

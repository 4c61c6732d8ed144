/** `tproxy doctor`: find what stops TPROXY from working on this host, and the command that fixes it. */
import { expectedTcpCapacity, RESERVED_DESCRIPTORS } from '../../dataplane/tcp/capacity.js';
import { fileLimit } from '../../sys/limits.js';
import type { ListenerCapacity } from '../../core/doctor/input.js';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { doctorInput, recordInSnapshot, shellWord, type FixCommands } from '../../core/doctor/input.js';
import { diagnose, formatReport, reportToJson, type DoctorReport } from '../../core/doctor/report.js';
import { DEFAULT_RULES_CONFIG, type RulesConfig } from '../../core/rules/config.js';
import { recordedConfig } from '../../core/doctor/recorded.js';
import { describeSource, runningConfig, selectsConfig, type RunningConfig } from '../discovery.js';
import type { TcpLimits } from '../../daemon/admin-protocol.js';
import { TproxyError } from '../../core/errors.js';
import { maskProxyUrl } from '../../core/upstream/proxy-url.js';
import { checkSnapshot, worldFromSnapshot, type Snapshot } from '../../core/model/snapshot.js';
import { configFlags } from '../../core/config/flags.js';
import { planRules } from '../../core/rules/plan.js';
import { ProcessRunner, type CommandRunner } from '../../sys/exec.js';
import { takeSnapshot } from '../../sys/snapshot.js';
import { type Command, defineCommand } from '../io.js';
import { HELP_OPTION, parseCommandLine, parseOptions, type CliOption } from '../../core/cli-options.js';
import { RULES_FLAGS, selectionOptions } from '../selection.js';

/** Its own options, then every option of `tproxy run` (they say what to expect, and reappear in the fix commands). */
const OWN_OPTIONS: readonly CliOption[] = [
  { name: 'snapshot', metavar: 'FILE', help: 'judge a saved state (tproxy snapshot > FILE) instead of this host' },
  { name: 'json', help: 'print the report as JSON (status, counts, findings with id, severity, seen, why, fix, trace)' },
];
const OPTIONS: readonly CliOption[] = [...OWN_OPTIONS, ...selectionOptions(configFlags()), HELP_OPTION];
const PARSE_OPTIONS = parseOptions(OPTIONS);
/** Doctor's own options, left out of the fix commands. */
const NOT_FORWARDED = new Set([...OWN_OPTIONS, HELP_OPTION].map((o) => o.name));
/** doctor's own switches (the rest select a configuration). */
const OWN = [...NOT_FORWARDED];
/** The options `tproxy rules apply` takes (the rules' part of the configuration, and --config). */
const RULES_OPTION_NAMES = new Set(selectionOptions(RULES_FLAGS).map((o) => o.name));

const SYNOPSIS = ['tproxy doctor [--json] [--snapshot FILE] [options of tproxy run]'];

const DESCRIPTION = `Checks everything TPROXY depends on, on this host (or in a saved snapshot), and says for each
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
  mmproxy     each mmproxy backend's first reply (SYN-ACK; a datagram to the session socket for
              protocol: udp) followed to the listener's socket: the loopback
              rule and its local route (backend on loopback), a route to the backend, the divert
              and fwmark rule and rp_filter on the way back (backend elsewhere), a backend on a
              non-loopback address of this host, a UDP backend on loopback whose socket is bound
              to 0.0.0.0 or :: (its replies leave from another address)
  probes      for each interface, family and intercepted port, a first packet followed by the
              model (tproxy explain); a failing probe shows its trace
What to expect (ports, families, marks, upstream mode; the fix commands repeat it), in this order:
the options given (any option of tproxy run, or --config FILE); without any, the configuration
of the tproxy run daemon in this network namespace, asked over its admin socket; without a
daemon, the record our rules carry (fwmark, route table, rule priority) over the defaults; else
the defaults. The first line names the source. When our table exists, its recorded fwmark, route
table and rule priority are used. TPROXY rules that tproxy does not own (--no-rules, or rules of
other tables in nft, iptables-nft or iptables-legacy) are judged by what they do, and fixed with
commands of their own family.

Exit status: 0 healthy (warnings allowed), 1 problems found, 2 could not inspect (not root, or a
source could not be read).
`;

/** The options doctor was given, as words for a fix command: all of them (run), or the rule selection only (rules apply). */
function commandArgs(argv: readonly string[], only?: ReadonlySet<string>): string[] {
  const { tokens } = parseArgs({ args: [...argv], options: PARSE_OPTIONS, strict: true, tokens: true });
  const out: string[] = [];
  for (const t of tokens) {
    if (t.kind !== 'option' || NOT_FORWARDED.has(t.name) || (only && !only.has(t.name))) continue;
    // A proxy URL's password is not printed: the command shows USER:***@ to fill in.
    const value = t.value !== undefined && t.name === 'upstream-proxy' ? maskProxyUrl(t.value) : t.value;
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

export interface DoctorRun {
  readonly running: RunningConfig;
  readonly report: DoctorReport;
}

/**
 * Judge a host (through `runner`, in its network namespace) or a saved snapshot against the
 * configuration that runs there: the options given, else the daemon's, else our record's, else
 * the defaults (discovery.ts). The fix commands repeat the options of that configuration.
 */
export async function doctorRun(argv: readonly string[], runner: CommandRunner, saved?: Snapshot): Promise<DoctorRun> {
  const { values } = parseCommandLine(argv, OPTIONS);
  const snapshot = saved ?? (await takeSnapshot(runner));
  const given = selectsConfig(values, OWN);
  const running = await runningConfig(values, given, commandArgs(argv), {
    runner,
    askDaemon: saved === undefined,
    record: () => {
      const found = recordInSnapshot(snapshot, DEFAULT_RULES_CONFIG.tableName);
      return Promise.resolve(found && { ...found, overlay: (base: RulesConfig) => recordedConfig(worldFromSnapshot(snapshot).ruleset, base, found.record) });
    },
  });
  planRules(running.rules);
  const withArgs = (command: string, args: readonly string[]): string => [command, ...args].join(' ');
  const commands: FixCommands = { apply: withArgs('tproxy rules apply', commandArgs(running.argv, RULES_OPTION_NAMES)), run: withArgs('tproxy run', commandArgs(running.argv)) };
  // A saved snapshot comes from another host (or time): its file limit is not this process's.
  const capacity = saved === undefined ? { capacity: capacityHere(running.tcp) } : {};
  return { running, report: diagnose(doctorInput(snapshot, running.rules, commands, running.upstream, { rulesApply: running.rulesApply, ...capacity })) };
}

/** The cap each listener's workers would apply here: the daemon raises its soft file limit to this process's hard one. */
function capacityHere(tcp: readonly TcpLimits[]): ListenerCapacity[] {
  const limit = fileLimit().hard;
  return tcp.map((l) => {
    const c = expectedTcpCapacity(l.maxConnections, limit, l.engine);
    return { listener: l.listener, configured: c.configured, perWorker: c.perWorker, fileLimit: c.fileLimit, descriptorsPerFlow: c.descriptorsPerFlow, sharedPipes: c.sharedPipes, reservedDescriptors: RESERVED_DESCRIPTORS, neededFileLimit: c.neededFileLimit };
  });
}

export function doctorCommand(runner: CommandRunner = new ProcessRunner()): Command {
  return defineCommand({
    name: 'doctor',
    summary: 'find what stops TPROXY from working on this host, and how to fix it',
    synopsis: SYNOPSIS,
    description: DESCRIPTION,
    options: OPTIONS,
    async run({ values, argv }, io): Promise<number> {
      const saved = typeof values.snapshot === 'string' ? await readSnapshot(values.snapshot) : undefined;
      const { running, report } = await doctorRun(argv, runner, saved);
      const configuration = { ...running.source, text: describeSource(running.source) };
      io.out(values.json === true ? `${JSON.stringify({ ...reportToJson(report), configuration }, null, 2)}\n` : `${configuration.text}\n${formatReport(report)}`);
      return report.status;
    },
  });
}

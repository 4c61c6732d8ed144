/** `tproxy rules plan|apply|status|cleanup`: the kernel side on its own. */
import { quoted } from '../../core/quote.js';
import { TproxyError } from '../../core/errors.js';
import { ipApplyCommands } from '../../core/rules/policy-routing.js';
import type { RulesPlan } from '../../core/rules/planned.js';
import type { PieceStatus } from '../../core/rules/status.js';
import { RulesController, createBackend, type RulesStatus } from '../../control/apply.js';
import type { BackendName } from '../../control/backend.js';
import { ProcessRunner, findExecutable } from '../../sys/exec.js';
import { type CliIo, defineCommand } from '../io.js';
import { planRules } from '../../core/rules/plan.js';
import { rulesConfigOf } from '../../core/config/rules-of.js';
import type { BackendChoice } from '../../control/backend.js';
import { HELP_OPTION, type CliOption } from '../../core/cli-options.js';
import { RULES_FLAGS, backendFrom, configFrom, selectionOptions, type SelectionValues } from '../selection.js';
import { describeSource, runningConfig, selectsConfig } from '../discovery.js';
import { loadConfig } from '../../core/config/document.js';
import { recordedConfig } from '../../core/doctor/recorded.js';
import { parseNftJson } from '../../core/model/nft-json.js';
import type { RulesConfig } from '../../core/rules/config.js';

const ACTIONS = ['plan', 'apply', 'status', 'cleanup'];
const OPTIONS: readonly CliOption[] = [...selectionOptions(RULES_FLAGS), { name: 'json', help: 'print data as JSON' }, HELP_OPTION];

const SYNOPSIS = ['tproxy rules plan|apply|status|cleanup [options]'];

const DESCRIPTION = `  plan      print exactly what apply writes (nft script or iptables-restore input, ip commands);
            changes nothing, needs no privileges
  apply     check, then apply atomically: ip routes and rules, then one nft (or iptables-restore)
            transaction. Idempotent: when everything is in place nothing is touched. Refuses when
            the mark, route table or rule priority is used by someone else on this host. Any
            failure rolls back to the state before
  status    compare what is live with what the options want, piece by piece: in place, missing,
            drifted; rule counters. Without options: with the configuration of the daemon
            running here (asked over its admin socket), else with the record our rules carry
            over the defaults; the first line names the source. Exit 0 when everything is in
            place (or the rules are managed outside tproxy), 1 otherwise
  cleanup   remove exactly our table (or chains), ip rules and routes, also those an earlier
            apply or a crashed tproxy run recorded; succeeds when there is nothing to remove
`;

const FAIL_MODE_TEXT = {
  open: 'open: while no proxy socket exists, intercepted traffic goes its normal way',
  drop: 'drop: while no proxy socket exists, intercepted traffic is dropped (fail closed)',
  reject: 'reject: while no proxy socket exists, intercepted traffic is rejected (TCP reset, ICMP port unreachable)',
} as const;

/** For `plan`: the backend apply would choose here, without requiring it to be installed. */
function planBackend(choice: BackendChoice): BackendName {
  if (choice !== 'auto') return choice;
  if (findExecutable('nft')) return 'nft';
  return findExecutable('iptables-restore') ? 'iptables' : 'nft';
}

function heredoc(argv: readonly string[], input: string): string {
  return `${argv.join(' ')} <<'EOF'\n${input}EOF\n`;
}

function renderPlan(plan: RulesPlan, backend: BackendName): { commands: { argv: readonly string[]; input: string }[]; ipCommands: string[][] } {
  return { commands: createBackend(backend, new ProcessRunner()).render(plan), ipCommands: ipApplyCommands(plan.policyRoutes) };
}

function pieceLine(p: PieceStatus): string {
  const counter = p.counter ? ` (${p.counter.packets} packets, ${p.counter.bytes} bytes)` : '';
  return `  ${p.state.padEnd(9)} ${p.name}${counter}${p.detail ? `: ${p.detail}` : ''}\n`;
}

function statusHeadline(status: RulesStatus): string {
  const count = (state: PieceStatus['state']): number => status.pieces.filter((p) => p.state === state).length;
  const owner = status.owner ? `, owner tproxy run pid ${status.owner.pid} (${status.owner.running ? 'running' : 'not running: stale, removed by the next start or tproxy rules cleanup'})` : '';
  if (status.inPlace) return `rules: in place (backend ${status.backend}${owner})\n`;
  if (count('in place') === 0 && status.unexpected.length === 0) return `rules: absent (backend ${status.backend})\n`;
  return `rules: not in place: ${count('missing')} missing, ${count('drifted')} drifted, ${status.unexpected.length} unexpected (backend ${status.backend}${owner})\n`;
}

/**
 * `rules status`: against the options given; without any, against what runs here (the daemon's
 * configuration, else the record of our rules over the defaults, else the defaults).
 */
async function status(values: SelectionValues, io: CliIo, json: (value: unknown) => void): Promise<number> {
  const runner = new ProcessRunner();
  const running = await runningConfig(values, selectsConfig(values, ['json', 'help']), [], {
    runner,
    // The record is read with the defaults' table name, by the backend this host would use.
    record: async () => {
      const defaults = rulesConfigOf(loadConfig({}, { values: {} }));
      const backend = backendFrom('auto');
      const found = await new RulesController(runner, { backend }).status(planRules(defaults));
      if (!found.record) return undefined;
      const record = found.record;
      if (backend !== 'nft') return { record, where: `the ${backend} mangle chains ${defaults.tableName.toUpperCase()}_*`, backend };
      // Our table's rules also say which ports go to which listener.
      const table = await runner.run(['nft', '-j', 'list', 'table', 'inet', defaults.tableName], { check: false });
      const ruleset = table.exitCode === 0 ? parseNftJson(table.stdout) : { tables: [] };
      return { record, where: `table inet ${defaults.tableName}`, backend, overlay: (base: RulesConfig) => recordedConfig(ruleset, base, record) };
    },
  });
  const configuration = { ...running.source, text: describeSource(running.source) };
  if (!running.rulesApply) {
    const text = 'rules: managed outside tproxy (rules.apply is false): `tproxy doctor` judges the rules in force';
    if (values.json === true) json({ configuration, managed: false });
    else io.out(`${configuration.text}\n${text}\n`);
    return 0;
  }
  const plan = planRules(running.rules);
  const backend = backendFrom(running.backend);
  const result = await new RulesController(runner, { backend }).status(plan);
  if (values.json === true) {
    json({ ...result, configuration });
  } else {
    io.out(`${configuration.text}\n`);
    io.out(statusHeadline(result));
    for (const piece of result.pieces) io.out(pieceLine(piece));
    if (result.unexpected.length > 0) io.out(`unexpected (in our table or chains, not planned):\n${result.unexpected.map((u) => `  ${u}\n`).join('')}`);
  }
  return result.inPlace ? 0 : 1;
}

export const rulesCommand = defineCommand({
  name: 'rules',
  summary: 'plan, apply, show or remove the kernel rules',
  synopsis: SYNOPSIS,
  description: DESCRIPTION,
  options: OPTIONS,
  actions: ACTIONS,
  operands: true,
  async run({ positionals, values: parsed }, io): Promise<number> {
    const values = parsed as SelectionValues & { json?: boolean };
    const [action, ...extra] = positionals;
    if (!action || extra.length > 0 || !ACTIONS.includes(action)) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `tproxy rules: expected one of ${ACTIONS.join(', ')}${action ? `, got ${quoted(positionals.join(' '))}` : ''}`);
    }
    const json = (value: unknown): void => io.out(`${JSON.stringify(value, null, 2)}\n`);
    if (action === 'status') return status(values, io, json);
    const config = await configFrom(values);
    const plan = planRules(rulesConfigOf(config));
    if (action === 'plan') {
      const backend = planBackend(config.rules.backend);
      const { commands, ipCommands } = renderPlan(plan, backend);
      if (values.json) {
        json({ backend, failMode: plan.config.failMode, commands, ipCommands, plan });
      } else {
        io.out(`# backend ${backend}; fail mode ${FAIL_MODE_TEXT[plan.config.failMode]}\n`);
        for (const c of commands) io.out(heredoc(c.argv, c.input));
        io.out(`${ipCommands.map((c) => c.join(' ')).join('\n')}\n`);
      }
      return 0;
    }
    const backend = backendFrom(config.rules.backend);
    const controller = new RulesController(new ProcessRunner(), { backend });
    switch (action) {
      case 'apply': {
        const result = await controller.apply(plan);
        for (const warning of result.warnings) io.err(`tproxy rules: warning: ${warning}\n`);
        if (values.json) {
          json({ ok: true, backend, ...result });
        } else {
          if (result.replaced?.stale) io.out(`replaced the stale rules of tproxy run pid ${result.replaced.owner ?? '?'} (not running)\n`);
          io.out(result.changed ? `applied (backend ${backend}): ${plan.policyRoutes.length} policy route(s), fail mode ${plan.config.failMode}\n` : `already in place (backend ${backend}): nothing changed\n`);
        }
        return 0;
      }
      case 'cleanup': {
        const removed = await controller.remove(plan);
        if (removed.owner?.running) io.err(`tproxy rules: warning: the removed rules belonged to tproxy run pid ${removed.owner.pid}, which is still running without them\n`);
        if (values.json) json({ ok: true, backend, ...removed });
        else io.out(`removed (backend ${backend}): ${removed.table ? 'our rules' : 'no rules of ours were there'}, ${removed.rules} ip rule(s), ${removed.routes} route(s)\n`);
        return 0;
      }
      default:
        throw new TproxyError('ERR_INVALID_ARGUMENT', `tproxy rules: unknown action ${action}`);
    }
  },
});

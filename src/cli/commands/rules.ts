/** `tproxy rules plan|apply|status|cleanup`: the kernel side on its own. */
import { TproxyError } from '../../core/errors.js';
import { quoted } from '../../core/quote.js';
import { ipApplyCommands } from '../../core/rules/policy-routing.js';
import type { RulesPlan } from '../../core/rules/ruleset.js';
import type { PieceStatus } from '../../core/rules/status.js';
import { RulesController, createBackend, type RulesStatus } from '../../control/apply.js';
import type { BackendName } from '../../control/backend.js';
import { ProcessRunner, findExecutable } from '../../sys/exec.js';
import type { CliIo, Command } from '../io.js';
import { planRules } from '../../core/rules/plan.js';
import { rulesConfigOf } from '../../core/config/rules-of.js';
import type { BackendChoice } from '../../control/backend.js';
import { RULES_FLAGS, backendFrom, configFrom, selectionHelp, selectionOptions } from '../selection.js';
import { parseCommandLine } from '../args.js';

const USAGE = `Usage: tproxy rules plan|apply|status|cleanup [options]

  plan      print exactly what apply writes (nft script or iptables-restore input, ip commands);
            changes nothing, needs no privileges
  apply     check, then apply atomically: ip routes and rules, then one nft (or iptables-restore)
            transaction. Idempotent: when everything is in place nothing is touched. Refuses when
            the mark, route table or rule priority is used by someone else on this host. Any
            failure rolls back to the state before
  status    compare what is live with what the options want, piece by piece: in place, missing,
            drifted; rule counters. Exit 0 when everything is in place, 1 otherwise
  cleanup   remove exactly our table (or chains), ip rules and routes, also those an earlier
            apply or a crashed tproxy run recorded; succeeds when there is nothing to remove

${selectionHelp(RULES_FLAGS)}
  --json                 print data as JSON
  --help                 this help
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

export const rulesCommand: Command = {
  name: 'rules',
  summary: 'plan, apply, show or remove the kernel rules',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandLine({
      args: argv,
      options: { ...selectionOptions(RULES_FLAGS), json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const [action, ...extra] = positionals;
    if (!action || extra.length > 0 || !['plan', 'apply', 'status', 'cleanup'].includes(action)) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `tproxy rules: expected one of plan, apply, status, cleanup${action ? `, got ${quoted(positionals.join(' '))}` : ''}`);
    }
    const config = await configFrom(values);
    const plan = planRules(rulesConfigOf(config));
    const json = (value: unknown): void => io.out(`${JSON.stringify(value, null, 2)}\n`);
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
      default: {
        const status = await controller.status(plan);
        if (values.json) {
          json(status);
        } else {
          io.out(statusHeadline(status));
          for (const piece of status.pieces) io.out(pieceLine(piece));
          if (status.unexpected.length > 0) io.out(`unexpected (in our table or chains, not planned):\n${status.unexpected.map((u) => `  ${u}\n`).join('')}`);
        }
        return status.inPlace ? 0 : 1;
      }
    }
  },
};

/** `tproxy rules plan|apply|status|cleanup`: the kernel side on its own. */
import { parseArgs } from 'node:util';
import { TproxyError } from '../../core/errors.js';
import { ipRouteArgs, ipRuleArgs, planRules, renderNftScript } from '../../core/rules/plan.js';
import { RulesController } from '../../control/apply.js';
import { ruleCounter } from '../../control/nft.js';
import { ProcessRunner } from '../../sys/exec.js';
import type { CliIo, Command } from '../io.js';
import { SELECTION_HELP, SELECTION_OPTIONS, rulesConfigFrom } from '../selection.js';

const USAGE = `Usage: tproxy rules plan|apply|status|cleanup [options]

  plan      print the nftables script and ip commands, change nothing
  apply     apply them (nft --check, then one atomic transaction; ip rule/route), idempotent
  status    show what is applied, with rule counters
  cleanup   remove our table, ip rules and routes

${SELECTION_HELP}
  --json                 print data as JSON
  --help                 this help
`;

export const rulesCommand: Command = {
  name: 'rules',
  summary: 'plan, apply, show or remove the kernel rules',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...SELECTION_OPTIONS, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const [action, ...extra] = positionals;
    if (!action || extra.length > 0 || !['plan', 'apply', 'status', 'cleanup'].includes(action)) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `tproxy rules: expected one of plan, apply, status, cleanup${action ? `, got "${positionals.join(' ')}"` : ''}`);
    }
    const plan = planRules(rulesConfigFrom(values));
    const controller = new RulesController(new ProcessRunner());
    const json = (value: unknown): void => io.out(`${JSON.stringify(value, null, 2)}\n`);
    switch (action) {
      case 'plan': {
        const ipCommands = plan.policyRoutes.flatMap((r) => [['ip', ...ipRouteArgs(r, 'replace')], ['ip', ...ipRuleArgs(r, 'add')]]);
        if (values.json) json({ plan, nftScript: renderNftScript(plan), ipCommands });
        else io.out(`# nft -f - <<'EOF'\n${renderNftScript(plan)}# EOF\n${ipCommands.map((c) => c.join(' ')).join('\n')}\n`);
        return 0;
      }
      case 'apply':
        await controller.apply(plan);
        if (values.json) json({ applied: true });
        else io.out(`applied: table ${plan.table.family} ${plan.table.name}, ${plan.policyRoutes.length} policy route(s)\n`);
        return 0;
      case 'cleanup': {
        const removed = await controller.remove(plan);
        if (values.json) json(removed);
        else io.out(`removed: table ${removed.table ? 'yes' : 'was not there'}, ${removed.rules} ip rule(s), ${removed.routes} route(s)\n`);
        return 0;
      }
      default: {
        const status = await controller.status(plan);
        if (values.json) {
          json(status);
        } else {
          io.out(status.table ? `table ${plan.table.family} ${plan.table.name}: present\n` : `table ${plan.table.family} ${plan.table.name}: absent\n`);
          for (const rule of status.table?.rules ?? []) {
            const counter = ruleCounter(rule);
            io.out(`  ${rule.comment ?? `handle ${rule.handle}`}${counter ? `: ${counter.packets} packets, ${counter.bytes} bytes` : ''}\n`);
          }
          for (const r of status.policyRoutes) io.out(`ipv${r.family}: fwmark rule ${r.rule ? 'present' : 'absent'}, local route ${r.route ? 'present' : 'absent'}\n`);
        }
        const complete = status.table !== undefined && status.policyRoutes.every((r) => r.rule && r.route);
        return complete ? 0 : 1;
      }
    }
  },
};

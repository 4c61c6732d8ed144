/** `tproxy config check FILE` and `tproxy config example`. */
import { quoted } from '../../core/quote.js';
import { readFile } from 'node:fs/promises';
import { HELP_OPTION } from '../../core/cli-options.js';
import { exampleConfig } from '../../core/config/example.js';
import { TproxyError } from '../../core/errors.js';
import { rulesConfigOf } from '../../core/config/rules-of.js';
import { planRules } from '../../core/rules/plan.js';
import { defineCommand } from '../io.js';
import { configFrom } from '../selection.js';

const OPTIONS = [{ name: 'json', help: 'check: print the configuration with every default filled in, as JSON' }, HELP_OPTION] as const;

/** How standard input is named in messages (`tproxy config check -`). */
const STDIN_NAME = '<stdin>';

const SYNOPSIS = ['tproxy config check [--json] FILE', 'tproxy config example'];

const DESCRIPTION = `  check     validate FILE (- for standard input) as tproxy run --config would (every setting, and
            the rules it plans), without applying anything. Exit 0 when valid, 2 with every
            problem (file:line:column, the setting's path, what is allowed) otherwise
  example   print a commented configuration with every setting and its default
`;

export const configCommand = defineCommand({
  name: 'config',
  summary: 'check a configuration file, or print a commented example',
  synopsis: SYNOPSIS,
  description: DESCRIPTION,
  options: OPTIONS,
  actions: ['check', 'example'],
  operand: 'FILE',
  operands: true,
  async run({ values, positionals }, io): Promise<number> {
    const [action, ...rest] = positionals;
    if (action === 'example' && rest.length === 0) {
      io.out(exampleConfig());
      return 0;
    }
    if (action === 'check' && rest.length === 1) {
      const stdin = rest[0] === '-';
      const file = stdin ? STDIN_NAME : (rest[0] as string);
      const config = await configFrom({ config: file }, stdin ? () => io.readInput() : (f) => readFile(f, 'utf8'));
      const plan = planRules(rulesConfigOf(config));
      if (values.json) {
        io.out(`${JSON.stringify(config, null, 2)}\n`);
        return 0;
      }
      const listeners = plan.config.listeners.map((l) => `${l.name} (port ${l.port}: ${l.intercept.map((s) => `${s.transport}:${s.ports.map((p) => (p.from === p.to ? p.from : `${p.from}-${p.to}`)).join(',')}`).join(' ')})`);
      const rules = config.rules.apply ? `rules: table inet ${plan.table.name}, ${plan.table.chains.reduce((n, c) => n + c.rules.length, 0)} rules, fail mode ${config.rules.failMode}` : 'rules: not applied (rules.apply: false)';
      io.out(`${file}: valid\nlisteners: ${listeners.join(', ')}\n${rules}\n`);
      return 0;
    }
    throw new TproxyError('ERR_INVALID_ARGUMENT', `tproxy config: expected "check FILE" or "example"${positionals.length > 0 ? `, got ${quoted(positionals.join(' '))}` : ''}`);
  },
});

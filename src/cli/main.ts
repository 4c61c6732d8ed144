/**
 * The command line: `tproxy <command> [options]`. The only place that turns errors into exit codes;
 * bin/tproxy.js is the only place that calls process.exit.
 */
import { clipped, quoted } from '../core/quote.js';
import { isTproxyError } from '../core/errors.js';
import { optionsHelp } from '../core/cli-options.js';
import { completionCommand } from './commands/completion.js';
import { configCommand } from './commands/config.js';
import { demoCommand } from './commands/demo.js';
import { doctorCommand } from './commands/doctor.js';
import { drainCommand, undrainCommand } from './commands/drain.js';
import { explainCommand } from './commands/explain.js';
import { rulesCommand } from './commands/rules.js';
import { runCommand } from './commands/run.js';
import { snapshotCommand } from './commands/snapshot.js';
import { statusCommand } from './commands/status.js';
import type { CliIo, Command } from './io.js';
import { GLOBAL_OPTIONS } from './completion.js';
import { manPage } from './man.js';
import { description, version } from './version.js';

export const COMMANDS: readonly Command[] = [demoCommand, runCommand, rulesCommand, explainCommand(), snapshotCommand(), doctorCommand(), configCommand, statusCommand, drainCommand, undrainCommand, completionCommand(() => COMMANDS)];

export { version };

export const EXIT_CODES = '0 success, 1 failure, 2 bad usage, 130 interrupted.';

/** The man page of tproxy (roff), written to man/tproxy.1 by the build. */
export function manPageText(): string {
  return manPage({ version: version(), description: description(), commands: COMMANDS, exitCodes: EXIT_CODES });
}

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: tproxy <command> [options]

A Linux transparent proxy built on the netfilter TPROXY target.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Options:
${optionsHelp(GLOBAL_OPTIONS)}

Exit codes: ${EXIT_CODES}
`;
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.out(`${version()}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`tproxy: unknown command ${quoted(name)}\n\n${usage()}`);
    return 2;
  }
  const json = rest.includes('--json');
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (isTproxyError(error)) {
      if (json) io.out(`${JSON.stringify({ ok: false, error: error.toJSON() }, null, 2)}\n`);
      io.err(`tproxy ${name}: ${error.message} [${error.code}]\n`);
      return error.code === 'ERR_INVALID_ARGUMENT' ? 2 : 1;
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      // node's message quotes the option whole: keep a line, not megabytes.
      io.err(`tproxy ${name}: ${clipped((error as Error).message)}\n\n${command.usage}`);
      return 2;
    }
    io.err(`tproxy ${name}: unexpected failure: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

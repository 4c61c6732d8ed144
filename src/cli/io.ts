import { type CliOption, optionsHelp } from '../core/cli-options.js';

/** Where the CLI reads and writes; the bin passes process streams, tests pass buffers. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** All of standard input (for a file named `-`). */
  readonly readInput: () => Promise<string>;
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin.setEncoding('utf8')) text += chunk as string;
  return text;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readInput: readStdin,
};

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** The `--help` text: synopsis, description and options (usageText). */
  readonly usage: string;
  /** Its forms, e.g. `tproxy config check [--json] FILE`. */
  readonly synopsis: readonly string[];
  /** What it does, preformatted lines (without the options). */
  readonly description: string;
  /** Every option it accepts (the same list parses them; completion and the man page show them). */
  readonly options: readonly CliOption[];
  /** The words its first operand can be (`tproxy rules plan`), if a fixed set. */
  readonly actions?: readonly string[];
  /** The operand after the action, e.g. `FILE` (completed as a file name) or `PACKET`. */
  readonly operand?: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/** The `--help` text of a command. */
export function usageText(synopsis: readonly string[], description: string, options: readonly CliOption[]): string {
  const forms = synopsis.map((form, i) => `${i === 0 ? 'Usage: ' : '       '}${form}`).join('\n');
  return `${forms}\n\n${description}\nOptions:\n${optionsHelp(options)}\n`;
}

import { type CliOption, type OptionValues, optionsHelp, parseCommandLine } from '../core/cli-options.js';

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

/** What a command is, and what it does with its command line once parsed. */
export interface CommandSpec<O extends readonly CliOption[]> extends Omit<Command, 'usage' | 'options' | 'run'> {
  readonly options: O;
  /** It takes operands (`actions` / `operand`, or words like a packet); without, an operand is refused. */
  readonly operands?: boolean;
  /** The parsed command line; `--help` never reaches it. */
  run(this: void, line: { readonly values: OptionValues<O>; readonly positionals: string[]; readonly argv: readonly string[] }, io: CliIo): Promise<number>;
}

/**
 * A lone `->` operand (a packet's arrow in `tproxy explain`) would read as an option: it is kept
 * apart while the options are parsed.
 */
const ARROW = '->';
const ARROW_HELD = '\u2192';

/**
 * A command from its spec: the `--help` text (usageText) made once and printed for `--help`, the
 * options parsed strictly (parseCommandLine) before `run`.
 */
export function defineCommand<const O extends readonly CliOption[]>(spec: CommandSpec<O>): Command {
  const { run, operands = false, ...about } = spec;
  const usage = usageText(spec.synopsis, spec.description, spec.options);
  return {
    ...about,
    usage,
    async run(argv: string[], io: CliIo): Promise<number> {
      const words = operands ? argv.map((a) => (a === ARROW ? ARROW_HELD : a)) : argv;
      const { values, positionals } = parseCommandLine(words, spec.options, operands);
      if ((values as { help?: boolean }).help === true) {
        io.out(usage);
        return 0;
      }
      return run({ values, positionals: positionals.map((w) => (w === ARROW_HELD ? ARROW : w)), argv }, io);
    },
  };
}

/**
 * A command-line option, described once. Parsing (node:util parseArgs), the `--help` lines, shell
 * completion and the man page all come from this description, so they cannot disagree. The options
 * of `tproxy run`, `rules` and `doctor` come from the configuration schema (config/flags.ts); the
 * other commands list theirs by hand. Pure.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TproxyError } from './errors.js';

export interface CliOption {
  readonly name: string;
  /** The value's placeholder, e.g. `PORT`. Absent: a switch without a value. */
  readonly metavar?: string;
  /** One sentence, without the default (added from `default`). */
  readonly help: string;
  /** The values it accepts when they are a fixed set (completion offers them). */
  readonly choices?: readonly string[];
  /** Repeatable: every occurrence adds one value. */
  readonly multiple?: boolean;
  /** The value when the option is absent (shown in help as `default X`). */
  readonly default?: string;
}

export type ParseArgsOptions = NonNullable<ParseArgsConfig['options']>;

/** The help switch every command takes. */
export const HELP_OPTION: CliOption = { name: 'help', help: 'this help' };

export function isSwitch(option: CliOption): boolean {
  return option.metavar === undefined;
}

/** The `parseArgs` options: switches are booleans (false when absent), the rest strings. */
export function parseOptions(options: readonly CliOption[]): ParseArgsOptions {
  const out: ParseArgsOptions = {};
  for (const o of options) {
    out[o.name] = isSwitch(o) ? { type: 'boolean' } : { type: 'string', ...(o.multiple ? { multiple: true } : {}), ...(o.default !== undefined ? { default: o.default } : {}) };
  }
  return out;
}

/** Wrap `text` to lines of at most `width` characters. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** `--name METAVAR` */
export function optionSynopsis(option: CliOption): string {
  return `--${option.name}${option.metavar ? ` ${option.metavar}` : ''}`;
}

/** The help text of an option with its default. */
export function optionText(option: CliOption): string {
  return option.default !== undefined && option.default !== '' ? `${option.help} (default ${option.default})` : option.help;
}

const COLUMN = 25;

/** The `--help` lines of options: the synopsis, then the help wrapped in a column. */
export function optionsHelp(options: readonly CliOption[]): string {
  const out: string[] = [];
  for (const option of options) {
    const head = `  ${optionSynopsis(option)}`;
    const lines = wrap(optionText(option), 72);
    if (head.length < COLUMN) out.push(`${head.padEnd(COLUMN)}${lines[0] ?? ''}`, ...lines.slice(1).map((l) => `${' '.repeat(COLUMN)}${l}`));
    else out.push(head, ...lines.map((l) => `${' '.repeat(COLUMN)}${l}`));
  }
  return out.join('\n');
}

type ValueOf<O extends CliOption> = O extends { readonly metavar: string }
  ? O extends { readonly multiple: true }
    ? string[]
    : O extends { readonly default: string }
      ? string
      : string | undefined
  : boolean | undefined;

/** The parsed values of a literal option list, typed by name. */
export type OptionValues<O extends readonly CliOption[]> = { -readonly [K in O[number] as K['name']]: ValueOf<K> };

/**
 * Parse `args` strictly (unknown options are refused) with the options of a literal list. One rule
 * parseArgs lacks: an option that takes one value (not `multiple`) given twice is refused instead
 * of the last one silently winning (`--listen 8000 --listen 8001` would start one listener on 8001,
 * not the two the user may have meant: several listeners are written in a configuration file).
 */
export function parseCommandLine<const O extends readonly CliOption[]>(args: readonly string[], options: O, allowPositionals = false): { values: OptionValues<O>; positionals: string[] } {
  const { values, positionals, tokens } = parseArgs({ args: [...args], options: parseOptions(options), allowPositionals, strict: true, tokens: true });
  const single = new Set(options.filter((o) => !isSwitch(o) && o.multiple !== true).map((o) => o.name));
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option' || !single.has(token.name)) continue;
    // The values are not repeated: one may hold a secret (a proxy URL's password).
    if (seen.has(token.name)) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `--${token.name} is given more than once, but takes one value: give it once${token.name === 'listen' ? ' (for several listeners, write them in a configuration file: tproxy config example)' : ''}`, { option: token.name });
    }
    seen.add(token.name);
  }
  return { values: values as OptionValues<O>, positionals };
}

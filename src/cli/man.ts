/**
 * The man page (roff, man(7) macros) from the same source as `--help`: each command's synopsis,
 * description and option list (for run, rules and doctor: the configuration schema's flags). The
 * build writes it to man/tproxy.1 (scripts/man-page.js); package.json's "man" installs it. Pure.
 */
import { type CliOption, optionText } from '../core/cli-options.js';
import { GLOBAL_OPTIONS } from './completion.js';

export interface ManCommand {
  readonly name: string;
  readonly summary: string;
  readonly synopsis: readonly string[];
  readonly description: string;
  readonly options: readonly CliOption[];
}

export interface ManPage {
  readonly version: string;
  /** One sentence: what tproxy is. */
  readonly description: string;
  readonly commands: readonly ManCommand[];
  /** `0 success, ...` */
  readonly exitCodes: string;
}

/** Text for roff: backslashes and dashes escaped, no line starting with a control character. */
export function roffText(text: string): string {
  return text
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
}

/** A preformatted block (kept as --help shows it). */
function preformatted(text: string): string[] {
  return ['.nf', roffText(text.replace(/\n+$/, '')), '.fi'];
}

function optionItem(option: CliOption): string[] {
  const name = roffText(`--${option.name}`);
  return ['.TP', option.metavar ? `.BI "${name} " ${roffText(option.metavar)}` : `.B ${name}`, roffText(optionText(option))];
}

export function manPage(page: ManPage): string {
  const lines = [
    `.TH TPROXY 1 "" "tproxy ${page.version}" "User Commands"`,
    '.SH NAME',
    `tproxy \\- ${roffText(page.description)}`,
    '.SH SYNOPSIS',
    '.B tproxy',
    '.I command',
    '.RI [ options ]',
    '.SH DESCRIPTION',
    `${roffText(page.description)}.`,
    'Each command below also prints its help with',
    '.BR "tproxy \\fIcommand\\fP \\-\\-help" .',
    '.SH OPTIONS',
    ...GLOBAL_OPTIONS.flatMap(optionItem),
    '.SH COMMANDS',
  ];
  for (const command of page.commands) {
    lines.push(`.SS ${command.name}`, `${roffText(command.summary)}.`, '.PP', ...preformatted(command.synopsis.join('\n')), '.PP', ...preformatted(command.description));
    lines.push('.PP', 'Options:', '.RS', ...command.options.flatMap(optionItem), '.RE');
  }
  lines.push(
    '.SH EXIT STATUS',
    roffText(page.exitCodes),
    '.SH SEE ALSO',
    '.BR nft (8),',
    '.BR ip\\-rule (8),',
    '.BR ip\\-route (8),',
    '.BR iptables (8),',
    '.BR systemd.exec (5)',
  );
  return `${lines.join('\n')}\n`;
}

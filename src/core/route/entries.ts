/**
 * The entries routes match on, as written in the configuration or a list file: address prefixes
 * (`10.0.0.0/8`, `2001:db8::/32`, a bare address) and names (`example.com` exactly,
 * `*.example.com` or `.example.com` for every name below it, `+.example.com` for both). Each parser returns the canonical
 * text, or throws saying what to write instead. Pure.
 */
import { TproxyError } from '../errors.js';
import { formatCidr, parseCidr } from '../rules/cidr.js';
import { parseDomainEntry } from '../sniff/domain-set.js';

export type EntryKind = 'prefixes' | 'names';

/**
 * `10.0.0.1/8` -> refused with `did you mean 10.0.0.0/8?`; the canonical prefix otherwise. The
 * parsers' messages (`prefix: has host bits ...`) do not repeat the text: callers show it.
 */
export function parsePrefixEntry(text: string): string {
  try {
    return formatCidr(parseCidr(text, 'prefix'));
  } catch (error) {
    // parseCidr's message quotes the text; the callers show it themselves.
    if (error instanceof TproxyError) throw new TproxyError('ERR_INVALID_ARGUMENT', error.message.replace(`"${text}" `, ''), { value: text });
    throw error;
  }
}

/**
 * `Example.COM.` -> `example.com`; `*.example.com` and `.example.com` -> `.example.com` (names under
 * it); `+.example.com` (the domain and the names under it) as is. DomainSet reads these forms.
 */
export function parseNameEntry(text: string): string {
  let entry;
  try {
    entry = parseDomainEntry(text);
  } catch (error) {
    if (error instanceof TproxyError) throw new TproxyError('ERR_INVALID_ARGUMENT', `name: ${error.message.replace(`${JSON.stringify(text)} `, '')}`, { value: text });
    throw error;
  }
  return entry.match === 'exact' ? entry.domain : entry.match === 'subdomains' ? `.${entry.domain}` : `+.${entry.domain}`;
}

export function parseEntry(kind: EntryKind, text: string): string {
  return kind === 'prefixes' ? parsePrefixEntry(text) : parseNameEntry(text);
}

export interface ListFileResult {
  readonly entries: readonly string[];
  /** `cn.txt:12: "10.0.0.1/8" has host bits set ...` */
  readonly problems: readonly string[];
}

/**
 * A list file: one entry per line; blank lines and everything after `#` are ignored. Every bad
 * line is reported with the file and line number (the first 10; then how many more).
 */
export function parseListFile(kind: EntryKind, file: string, text: string): ListFileResult {
  const entries: string[] = [];
  const problems: string[] = [];
  let more = 0;
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    const body = line.replace(/#.*$/, '').trim();
    if (body === '') continue;
    try {
      entries.push(parseEntry(kind, body));
    } catch (error) {
      if (!(error instanceof TproxyError)) throw error;
      if (problems.length < 10) problems.push(`${file}:${i + 1}: "${body}" ${error.message.slice(error.message.indexOf(': ') + 2)}`);
      else more++;
    }
  }
  if (more > 0) problems.push(`${file}: and ${more} more bad line${more === 1 ? '' : 's'}`);
  return { entries, problems };
}

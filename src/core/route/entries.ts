/**
 * The entries routes match on, as written in the configuration or a list file: address prefixes
 * (`10.0.0.0/8`, `2001:db8::/32`, a bare address) and names (`example.com` exactly,
 * `*.example.com` or `.example.com` for every name below it). Each parser returns the canonical
 * text, or throws saying what to write instead. Pure.
 */
import { TproxyError } from '../errors.js';
import { formatCidr, parseCidr } from '../rules/cidr.js';

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

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** `Example.COM.` -> `example.com`; `*.example.com` and `.example.com` -> `.example.com` (a suffix). */
export function parseNameEntry(text: string): string {
  const bad = (why: string): never => {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `name: ${why}`, { value: text });
  };
  let name = text.trim().toLowerCase();
  let suffix = false;
  if (name.startsWith('*.')) [name, suffix] = [name.slice(2), true];
  else if (name.startsWith('.')) [name, suffix] = [name.slice(1), true];
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '') return bad('names nothing: write example.com, or *.example.com for every name below it');
  if (name.length > 253) return bad('is longer than a DNS name can be (253 characters)');
  if (name.includes('*')) return bad('has a * that is not the first label: only *.example.com (every name below example.com) is allowed');
  for (const label of name.split('.')) if (!LABEL.test(label)) return bad(`has an invalid label "${label}": use letters, digits, - and _ (1-63 each, no - at either end)`);
  return suffix ? `.${name}` : name;
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

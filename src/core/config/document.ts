/**
 * A configuration document: YAML text (or nothing) plus command-line flags in, a validated
 * TproxyConfig out, or one TproxyError listing every problem with the file, line, field path and
 * what is allowed. Pure: the caller reads the file.
 */
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { TproxyError } from '../errors.js';
import { type FlagOverlay, applyFlags } from './flags.js';
import { checkRules } from './rules-of.js';
import { withListFiles } from './list-files.js';
import { type ConfigIssue, type ConfigPath, decode, formatPath } from './schema.js';
import { CONFIG_SCHEMA, type TproxyConfig } from './tproxy-config.js';

export interface ConfigSource {
  /** File name for messages (`tproxy.yaml`); absent: flags only. */
  readonly file?: string;
  /** The file's text. */
  readonly text?: string;
  /**
   * Reads a list file named in the configuration (a path as written there; relative ones are
   * relative to the configuration file). Throws when it cannot (its message says why). Absent:
   * list files are refused.
   */
  readonly readFile?: (path: string) => string;
}

function rangeStart(node: unknown): number | undefined {
  return (node as { range?: [number, number, number] } | undefined)?.range?.[0];
}

/**
 * Where in the text a path is (offset): its key for unknown settings, else its value; a value the
 * file does not give (a default) is placed at the nearest enclosing one it does.
 */
function offsetOf(doc: Document, issue: ConfigIssue): number | undefined {
  if (issue.atKey) {
    const map: unknown = issue.path.length === 1 ? doc.contents : doc.getIn(issue.path.slice(0, -1), true);
    if (isMap(map)) return rangeStart(map.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === issue.path[issue.path.length - 1])?.key);
  }
  for (let n = issue.path.length; n >= 0; n--) {
    const start = rangeStart(n === 0 ? doc.contents : doc.getIn(issue.path.slice(0, n), true));
    if (start !== undefined) return start;
  }
  return undefined;
}

/** How many problems a message lists (all of them stay in the error's details). */
const MAX_LISTED_PROBLEMS = 20;

function fail(lines: string[], details: Record<string, unknown>): never {
  const listed = lines.slice(0, MAX_LISTED_PROBLEMS).map((l) => `  ${l}`);
  if (lines.length > MAX_LISTED_PROBLEMS) listed.push(`  ... and ${lines.length - MAX_LISTED_PROBLEMS} more`);
  const message = lines.length === 1 ? (lines[0] as string) : `${lines.length} problems in the configuration:\n${listed.join('\n')}`;
  throw new TproxyError('ERR_INVALID_ARGUMENT', message, details);
}

/** How many aliased nodes a document may expand (a real configuration has a few). */
const MAX_ALIAS_COUNT = 100;

/** Parse the YAML text into a plain value (undefined for an empty file). */
function parseText(source: ConfigSource): { raw: unknown; doc?: Document; counter?: LineCounter } {
  if (source.text === undefined) return { raw: undefined };
  const counter = new LineCounter();
  const doc = parseDocument(source.text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const file = source.file ?? 'config';
  if (doc.errors.length > 0) {
    fail(
      doc.errors.map((e) => {
        const { line, col } = counter.linePos(e.pos[0]);
        return `${file}:${line}:${col}: not valid YAML: ${e.message.split('\n')[0] ?? ''}`;
      }),
      { file },
    );
  }
  let raw: unknown;
  try {
    // The alias limit stops a "billion laughs" document: the yaml library throws a plain Error then.
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    const why = (error as Error).message.split('\n')[0] ?? '';
    fail([/alias/i.test(why) ? `${file}: too many aliases: the document expands to more than ${MAX_ALIAS_COUNT} aliased nodes (write the values out)` : `${file}: not valid YAML: ${why}`], { file });
  }
  return { raw, doc, counter };
}

/**
 * A file with mmproxy entries and no `listeners:` key replaces go-mmproxy: it gets no transparent
 * listener (the default `main` would intercept ports 80 and 443 it never asked for). Pure.
 */
function withoutDefaultListener(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const fields = raw as Record<string, unknown>;
  const mmproxy = fields['mmproxy'];
  if ((fields['listeners'] !== undefined && fields['listeners'] !== null) || !Array.isArray(mmproxy) || mmproxy.length === 0) return raw;
  return { ...fields, listeners: [] };
}

/** Validate the file and flags (flags win) into the configuration, or throw naming every problem. */
export function loadConfig(source: ConfigSource, flags: FlagOverlay = { values: {} }): TproxyConfig {
  const { raw, doc, counter } = parseText(source);
  const file = source.file ?? 'config';
  const issues: ConfigIssue[] = [];
  const { raw: merged, fromFlag } = applyFlags(raw, flags, issues);
  const decoded = issues.length === 0 ? decode(CONFIG_SCHEMA, withoutDefaultListener(merged), [], issues) : undefined;
  const config = decoded && withListFiles(decoded, source.readFile, issues);
  if (config) checkRules(config, issues);
  if (issues.length === 0 && config) return config;
  const located = issues.map((issue) => {
    const flag = fromFlag(issue.path);
    const offset = flag === undefined && doc ? offsetOf(doc, issue) : undefined;
    const pos = offset !== undefined && counter ? counter.linePos(offset) : undefined;
    const where = flag !== undefined ? `--${flag}` : source.file === undefined ? '' : `${file}${pos ? `:${pos.line}:${pos.col}` : ''}`;
    return { issue, offset: offset ?? Number.MAX_SAFE_INTEGER, text: [where, issue.path.length > 0 ? formatPath(issue.path) : '', issue.message].filter((s) => s !== '').join(': ') };
  });
  // In the order of the file; flags and defaults after.
  located.sort((a, b) => a.offset - b.offset);
  fail(
    located.map((l) => l.text),
    { ...(source.file === undefined ? {} : { file: source.file }), issues: located.map((l) => ({ path: formatPath(l.issue.path), message: l.issue.message })) },
  );
}

export type { ConfigPath };

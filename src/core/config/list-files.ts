/**
 * The list files of `lists:` read (through the caller's reader: this module does no I/O) and
 * added to each list's entries; an unreadable file or a bad line is an issue at the list's `file`
 * setting that names the list file and line. Pure.
 */
import { parseEntry, parseListFile } from '../route/entries.js';
import type { ConfigIssue } from './schema.js';
import type { TproxyConfig } from './tproxy-config.js';

/** The configuration with every list's entries in canonical form, its file's after its inline ones; undefined when an issue was found. */
export function withListFiles(config: TproxyConfig, readFile: ((path: string) => string) | undefined, issues: ConfigIssue[]): TproxyConfig | undefined {
  const before = issues.length;
  const lists = config.lists.map((list, i) => {
    const inline = list.entries.map((e) => parseEntry(list.kind, e));
    if (list.file === undefined) return { ...list, entries: inline };
    const path = ['lists', i, 'file'];
    if (!readFile) {
      issues.push({ path, message: 'list files are read by tproxy run and tproxy config check FILE only' });
      return list;
    }
    let text: string;
    try {
      text = readFile(list.file);
    } catch (error) {
      issues.push({ path, message: `cannot read ${list.file}: ${error instanceof Error ? error.message : String(error)}; give an existing file of one ${list.kind === 'prefixes' ? 'prefix' : 'name'} per line` });
      return list;
    }
    const { entries, problems } = parseListFile(list.kind, list.file, text);
    for (const problem of problems) issues.push({ path, message: problem });
    if (problems.length === 0 && entries.length === 0 && list.entries.length === 0) issues.push({ path, message: `${list.file} has no entries: add one ${list.kind === 'prefixes' ? 'prefix' : 'name'} per line` });
    return { ...list, entries: [...inline, ...entries] };
  });
  return issues.length === before ? { ...config, lists } : undefined;
}

/**
 * `lists:` named lists of prefixes or names that routes refer to, written inline (`entries`) or
 * kept in a file of one entry per line (`file`, relative to the configuration file). The files are
 * read when the configuration is loaded (and again on every reload).
 */
import type { EntryKind } from '../../route/entries.js';
import { parseEntry } from '../../route/entries.js';
import { type Infer, list, oneOf, optional, refused, refusing, section, text } from '../schema.js';
import { NAME_ALLOWED, NAME_PATTERN } from './outbounds.js';

export const LIST_KINDS: readonly EntryKind[] = ['prefixes', 'names'];

export const LIST = section({
  help: 'One named list.',
  fields: {
    name: text({ allowed: NAME_ALLOWED, example: 'lan', help: 'Names the list in routes (destinationLists, sourceLists, nameLists).', parse: (t) => (NAME_PATTERN.test(t) ? t : refused()) }),
    kind: oneOf(LIST_KINDS, { example: 'prefixes', help: 'prefixes: addresses and prefixes (10.0.0.0/8); names: exact names (example.com) and suffixes (*.example.com).' }),
    file: optional(text({ type: 'path', allowed: 'a file path', example: 'lan.txt', help: 'A file of one entry per line (# comments), relative to the configuration file; read on start and on every reload.', parse: (t) => (t.trim() === '' ? refused() : t) })),
    entries: list(text({ type: 'entry', allowed: 'a prefix or a name', help: 'entry' }), { default: [], help: 'Entries written here (added to the file\'s).' }),
  },
  check(l, path, issues) {
    if (!l.file && l.entries.length === 0) issues.push({ path: [...path, 'entries'], message: 'the list is empty: give entries, a file, or both' });
    for (const [i, entry] of l.entries.entries()) {
      const out = refusing((t: string) => parseEntry(l.kind, t))(entry);
      if (typeof out !== 'string') issues.push({ path: [...path, 'entries', i], message: `${JSON.stringify(entry)} ${out.refused}` });
    }
  },
});

export type ListSettings = Infer<typeof LIST>;

export const LISTS = list(LIST, {
  default: [],
  allowed: 'a list of lists (name, kind, file, entries)',
  help: 'Named lists of prefixes or names for the routes, inline or from files (10,000s of prefixes cost O(log n) per flow).',
});

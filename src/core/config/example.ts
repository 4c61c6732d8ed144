/**
 * `tproxy config example`: every setting of the schema with its help as a comment and its default
 * as the value (settings without a default are shown commented out with an example). The output
 * passes `tproxy config check`. Pure.
 */
import { stringify } from 'yaml';
import { wrap } from '../cli-options.js';
import type { Setting, ValueSetting } from './schema.js';
import { CONFIG_SCHEMA } from './tproxy-config.js';

function scalar(setting: Setting<unknown>, raw: unknown): string {
  if (setting.kind === 'value' && setting.type === 'mark' && typeof raw === 'string') return raw;
  return stringify(raw, { lineWidth: 0 }).trimEnd();
}

function comment(indent: string, setting: Setting<unknown>): string[] {
  const extra = [setting.unit ? `unit: ${setting.unit}` : '', setting.flag ? `flag: --${setting.flag.name}` : ''].filter((s) => s !== '');
  const text = `${setting.help}${extra.length > 0 ? ` (${extra.join('; ')})` : ''}`;
  return wrap(text, 96 - indent.length).map((l) => `${indent}# ${l}`);
}

function valueLines(indent: string, key: string, setting: ValueSetting<unknown>): string[] {
  if (setting.default !== undefined) return [`${indent}${key}: ${scalar(setting, setting.default)}`];
  const example = setting.example ?? '';
  return [`${indent}# ${key}: ${scalar(setting, example)}`];
}

function listLines(indent: string, key: string, setting: Setting<unknown> & { kind: 'list' }): string[] {
  const items = setting.default ?? [];
  if (setting.item.kind === 'section' && items.length === 0) {
    // An empty list by default: `key: []`, then one item with example values, commented out.
    const examples = Object.fromEntries(Object.entries(setting.item.fields).flatMap(([k, f]) => (f.kind === 'value' && f.default === undefined && f.example !== undefined && !f.optional ? [[k, f.example]] : [])));
    const body = sectionLines(`${indent}    `, setting.item, examples);
    const first = body.findIndex((l) => !l.trimStart().startsWith('#'));
    const item = [...body.slice(0, first), `${indent}  - ${(body[first] ?? '').trimStart()}`, ...body.slice(first + 1)];
    return [`${indent}${key}: []`, ...item.map((l) => (l.trimStart().startsWith('#') ? l : l.replace(/^(\s*)/, '$1# ')))];
  }
  if (setting.item.kind === 'section') {
    const out = [`${indent}${key}:`];
    for (const item of items.length > 0 ? items : [{}]) {
      const body = sectionLines(`${indent}    `, setting.item, item as Record<string, unknown>);
      // The first line of the item follows its dash.
      const first = body.findIndex((l) => !l.trimStart().startsWith('#'));
      out.push(...body.slice(0, first), `${indent}  - ${(body[first] ?? '').trimStart()}`, ...body.slice(first + 1));
    }
    // None by default: the one item is shown commented out (as an example), so the file keeps the default.
    return items.length > 0 ? out : out.map((l) => (l.trimStart().startsWith('#') ? l : l.replace(/^(\s*)/, '$1# ')));
  }
  if (items.length === 0) return [`${indent}${key}: []`];
  if (items.every((i) => typeof i === 'number')) return [`${indent}${key}: [${items.join(', ')}]`];
  return [`${indent}${key}:`, ...items.map((item) => `${indent}  - ${scalar(setting.item, item)}`)];
}

/** Lines of a section's fields; `given` overrides the defaults of the fields it names. */
function sectionLines(indent: string, setting: Setting<unknown> & { kind: 'section' }, given: Record<string, unknown> = {}): string[] {
  const out: string[] = [];
  for (const [key, field] of Object.entries(setting.fields)) {
    out.push(...comment(indent, field));
    if (field.kind === 'section') out.push(`${indent}${key}:`, ...sectionLines(`${indent}  `, field));
    else if (field.kind === 'list') out.push(...listLines(indent, key, field));
    else out.push(...valueLines(indent, key, key in given ? { ...field, default: given[key] } : field));
  }
  return out;
}

export function exampleConfig(): string {
  const lines = [
    '# tproxy configuration: every setting with its default (tproxy config example).',
    '# Check a file with `tproxy config check FILE`; run with `tproxy run --config FILE`;',
    '# SIGHUP reloads it. Flags of tproxy run override these settings.',
    ...sectionLines('', CONFIG_SCHEMA),
  ];
  return `${lines.join('\n')}\n`;
}

/** The configuration reference of docs/configuration.md: one table row per setting, from the schema. Pure. */
import type { Setting } from './schema.js';
import { CONFIG_SCHEMA } from './tproxy-config.js';

export const REFERENCE_START = "<!-- config-reference:start (generated from src/core/config/sections/ by npm run docs:config) -->";
export const REFERENCE_END = '<!-- config-reference:end -->';

function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

function defaultText(setting: Setting<unknown>): string {
  if (setting.kind === 'section' || (setting.kind === 'list' && setting.item.kind === 'section')) return '';
  const d = setting.default;
  if (d === undefined) return setting.kind === 'value' && setting.optional ? '(none)' : '';
  if (Array.isArray(d)) return d.length === 0 ? '`[]`' : `\`${JSON.stringify(d).replaceAll('"', '')}\``;
  if (typeof d === 'string') return `\`${d}\``;
  return typeof d === 'number' || typeof d === 'boolean' ? `\`${d.toString()}\`` : '';
}

function typeText(setting: Setting<unknown>): string {
  if (setting.kind === 'value') return setting.type;
  if (setting.kind === 'list') return `list of ${setting.item.kind === 'section' ? 'mappings' : typeText(setting.item)}`;
  return 'mapping';
}

function rows(setting: Setting<unknown>, path: string, out: string[]): void {
  if (setting.kind === 'section') {
    for (const [key, field] of Object.entries(setting.fields)) {
      const p = path === '' ? key : `${path}.${key}`;
      if (field.kind === 'section') rows(field, p, out);
      else {
        out.push(`| \`${p}\` | ${cell(typeText(field))} | ${cell(defaultText(field))} | ${field.unit ?? ''} | ${field.flag ? `\`--${field.flag.name}\`` : ''} | ${cell(field.help)} |`);
        if (field.kind === 'list' && field.item.kind === 'section') rows(field.item, `${p}[]`, out);
      }
    }
  }
}

/** The markdown between the markers (markers included). */
export function configReference(): string {
  const out = ['| setting | type | default | unit | flag | what it does |', '|---|---|---|---|---|---|'];
  rows(CONFIG_SCHEMA, '', out);
  return `${REFERENCE_START}\n${out.join('\n')}\n${REFERENCE_END}`;
}

/** Document text with the section between the markers replaced (undefined: the markers are missing). */
export function withReference(readme: string): string | undefined {
  const start = readme.indexOf(REFERENCE_START);
  const end = readme.indexOf(REFERENCE_END);
  if (start < 0 || end < start) return undefined;
  return `${readme.slice(0, start)}${configReference()}${readme.slice(end + REFERENCE_END.length)}`;
}

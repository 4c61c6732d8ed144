/**
 * Command-line flags from the schema: each setting that names a flag gets one. Flags override the
 * file: their values are laid over the parsed document before it is validated, so a flag's value is
 * checked by the same setting, and a problem names the flag. Flags of listener settings apply to
 * every listener; those that identify one listener (port, addresses, intercept) are refused when
 * the file has several. Pure.
 */
import { type CliOption, optionsHelp, parseOptions, type ParseArgsOptions } from '../cli-options.js';
import { type ConfigIssue, type ConfigPath, type FlagSpec, formatPath, type Setting } from './schema.js';
import { CONFIG_SCHEMA } from './tproxy-config.js';

/** `*` stands for every item of a list of sections. */
export type FlagPath = readonly string[];

export interface ConfigFlag {
  readonly flag: FlagSpec;
  readonly path: FlagPath;
  readonly setting: Setting<unknown>;
}

export type FlagValues = Readonly<Record<string, string | boolean | readonly (string | boolean)[] | undefined>>;

export interface FlagOverlay {
  readonly values: FlagValues;
}

function walk(setting: Setting<unknown>, path: FlagPath, out: ConfigFlag[]): void {
  if (setting.flag) out.push({ flag: setting.flag, path, setting });
  if (setting.kind === 'section') for (const [name, field] of Object.entries(setting.fields)) walk(field, [...path, name], out);
  if (setting.kind === 'list' && setting.item.kind === 'section') walk(setting.item, [...path, '*'], out);
}

/** Every flag the schema defines, in schema order. */
export function configFlags(schema: Setting<unknown> = CONFIG_SCHEMA): ConfigFlag[] {
  const out: ConfigFlag[] = [];
  walk(schema, [], out);
  return out;
}

function isSwitch(flag: FlagSpec): boolean {
  return flag.metavar === undefined;
}

function defaultText(setting: Setting<unknown>): string | undefined {
  const d = setting.kind === 'section' ? undefined : setting.default;
  if (d === undefined) return undefined;
  if (Array.isArray(d)) return d.length === 0 ? undefined : d.join(' ');
  if (typeof d === 'string') return d;
  return typeof d === 'number' || typeof d === 'boolean' ? d.toString() : undefined;
}

/**
 * The command-line option of a flag: its help says the unit, the default and the setting it
 * overrides. No parse default: an absent flag leaves the file's value.
 */
export function flagOption({ flag, path, setting }: ConfigFlag): CliOption {
  const d = isSwitch(flag) ? undefined : defaultText(setting);
  const more = [flag.multiple ? 'repeatable' : '', setting.unit ? `unit ${setting.unit}` : '', d ? `default ${d}` : ''].filter((s) => s !== '');
  const choices = setting.kind === 'value' ? setting.choices : undefined;
  return {
    name: flag.name,
    ...(flag.metavar !== undefined ? { metavar: flag.metavar } : {}),
    help: `${flag.help ?? setting.help}${more.length > 0 ? ` (${more.join(', ')})` : ''} [${path.join('.').replaceAll('.*', '[]')}]`,
    ...(choices ? { choices } : {}),
    ...(flag.multiple ? { multiple: true } : {}),
  };
}

/** The `parseArgs` options of the flags. */
export function parseArgsOptions(flags: readonly ConfigFlag[] = configFlags()): ParseArgsOptions {
  return parseOptions(flags.map(flagOption));
}

/** `--help` text of the flags: name, help, unit and default, and the setting it overrides. */
export function flagsHelp(flags: readonly ConfigFlag[] = configFlags()): string {
  return optionsHelp(flags.map(flagOption));
}

function isMapping(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw);
}

/** Set `value` at `path` inside `root` (creating mappings on the way); false when the document is in the way. */
function setAt(root: Record<string, unknown>, path: readonly (string | number)[], value: unknown): boolean {
  let node: unknown = root;
  for (const [i, key] of path.entries()) {
    const last = i === path.length - 1;
    if (typeof key === 'number') {
      if (!Array.isArray(node)) return false;
      if (last) node[key] = value;
      else node = node[key] = isMapping(node[key]) ? node[key] : {};
    } else {
      if (!isMapping(node)) return false;
      if (last) node[key] = value;
      else {
        if (node[key] === undefined || node[key] === null) node[key] = {};
        node = node[key];
      }
    }
  }
  return true;
}

function rawOf(flag: FlagSpec, given: string | boolean | readonly (string | boolean)[]): unknown {
  const one = (v: string | boolean): unknown => (typeof v === 'boolean' ? (flag.toRaw ? flag.toRaw('') : v) : flag.toRaw ? flag.toRaw(v) : v);
  return typeof given === 'object' ? given.map(one) : one(given);
}

/**
 * Lay the given flags over the parsed document (not changed: a copy is returned). `fromFlag` tells
 * which flag set a path (or a parent of it), so problems can name the flag.
 */
export function applyFlags(raw: unknown, overlay: FlagOverlay, issues: ConfigIssue[], flags: readonly ConfigFlag[] = configFlags()): { raw: unknown; fromFlag: (path: ConfigPath) => string | undefined } {
  const set = new Map<string, string>();
  const fromFlag = (path: ConfigPath): string | undefined => {
    for (let n = path.length; n > 0; n--) {
      const name = set.get(formatPath(path.slice(0, n)));
      if (name) return name;
    }
    return undefined;
  };
  const present = flags.filter(({ flag }) => overlay.values[flag.name] !== undefined);
  if (present.length === 0) return { raw, fromFlag };
  const root: unknown = raw === undefined || raw === null ? {} : structuredClone(raw);
  if (!isMapping(root)) return { raw, fromFlag };
  for (const { flag, path } of present) {
    const given = overlay.values[flag.name];
    if (given === undefined) continue;
    const value = rawOf(flag, given);
    const star = path.indexOf('*');
    const concrete: (string | number)[][] = [];
    if (star < 0) concrete.push([...path]);
    else {
      const listPath = path.slice(0, star);
      if (listPath.length !== 1) throw new Error('flags inside nested lists are not supported');
      const key = listPath[0] as string;
      if (root[key] === undefined || root[key] === null) root[key] = [{}];
      const items = root[key];
      if (!Array.isArray(items)) continue;
      if (flag.single && items.length > 1) {
        issues.push({ path: [key], message: `--${flag.name} sets a setting of one listener, but there are ${items.length}: set ${path.slice(star + 1).join('.')} of each in the file` });
        continue;
      }
      for (let i = 0; i < items.length; i++) concrete.push([...listPath, i, ...(path.slice(star + 1))]);
    }
    for (const p of concrete) if (setAt(root, p, value)) set.set(formatPath(p), flag.name);
  }
  return { raw: root, fromFlag };
}

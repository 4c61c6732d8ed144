/**
 * The configuration schema language: each setting is described once (type, default, unit, one
 * sentence of help, optional command-line flag) and the description drives validation, the flags
 * of `tproxy run`, `tproxy config example` and the configuration reference in docs/configuration.md. Pure.
 *
 * A setting decodes a raw value (parsed YAML, or a flag's text) into its typed value, or records an
 * issue naming the field path and what is allowed. Sections hold named settings and refuse
 * unknown keys (with a did-you-mean suggestion when one is close).
 */
import { TproxyError } from '../errors.js';
import { QUOTE_MAX_CHARS, quoted } from '../quote.js';
import { didYouMean } from './suggest.js';

export type PathSegment = string | number;
export type ConfigPath = readonly PathSegment[];

/** One problem found in a configuration: where (field path) and what is wrong and allowed. */
export interface ConfigIssue {
  readonly path: ConfigPath;
  readonly message: string;
  /** The issue is about the key itself (an unknown setting), not its value. */
  readonly atKey?: boolean;
}

/** `listeners[1].port` */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const segment of path) {
    // A key is the file's text: a 20 MB one is shown by its start.
    const key = typeof segment === 'string' && segment.length > QUOTE_MAX_CHARS ? quoted(segment) : segment;
    out += typeof key === 'number' ? `[${key}]` : out === '' ? key : `.${key}`;
  }
  return out;
}

/** The command-line flag that sets a setting (its value is text, or true for a boolean switch). */
export interface FlagSpec {
  readonly name: string;
  /** Shown in `--help` after the flag name, e.g. `PORT`. Absent: a switch without a value. */
  readonly metavar?: string;
  /** Repeatable: every occurrence adds one item of a list. */
  readonly multiple?: boolean;
  /** Sets a listener setting that only makes sense for one listener: refused with a file of several. */
  readonly single?: boolean;
  /** Turns the flag's text into the raw value of the setting (default: the text as is). */
  readonly toRaw?: (text: string) => unknown;
  /** The flag's own help in `--help`, where the setting's reads the wrong way (a switch that turns a setting off). */
  readonly help?: string;
}

interface SettingBase<T> {
  /** One sentence of help. */
  readonly help: string;
  readonly unit?: string;
  readonly flag?: FlagSpec;
  /** What is allowed, as the end of "use ...", e.g. `an integer from 1 to 65535`. */
  readonly allowed: string;
  /** A raw value for the example file when there is no default. */
  readonly example?: unknown;
  /** How a value given as text is shown in messages when it may hold a secret (a proxy URL's password). */
  readonly shown?: (text: string) => string;
  /** Phantom: the decoded type. */
  readonly __type?: { readonly value: T };
}

/** Why a raw value was refused ('' : it is not what `allowed` says). */
export interface Refusal {
  readonly refused: string;
}

const REFUSALS = new WeakSet<object>();

export function refused(reason = ''): Refusal {
  const r = { refused: reason };
  REFUSALS.add(r);
  return r;
}

/**
 * A parser that throws the project's error (it speaks of a flag or value: "NAME: reason"), as a
 * setting's parse: its reason becomes the refusal, so the message names the file's path instead.
 */
export function refusing<T>(parse: (text: string) => T): (text: string) => T | Refusal {
  return (text) => {
    try {
      return parse(text);
    } catch (error) {
      if (!(error instanceof TproxyError)) throw error;
      return refused(error.message.slice(error.message.indexOf(': ') + 2));
    }
  };
}

function isRefusal(value: unknown): value is Refusal {
  return typeof value === 'object' && value !== null && REFUSALS.has(value);
}

export interface ValueSetting<T> extends SettingBase<T> {
  readonly kind: 'value';
  /** The type as the reference shows it, e.g. `integer`, `port`, `text`. */
  readonly type: string;
  /** The values allowed when they are a fixed set (shell completion offers them). */
  readonly choices?: readonly string[];
  /** The raw default (as written in YAML); absent: required, unless optional. */
  readonly default?: unknown;
  /** Absent means undefined (no default, not required). */
  readonly optional?: boolean;
  /** Raw value in, typed value or refusal out. */
  readonly parse: (raw: unknown) => T | Refusal;
}

export interface ListSetting<T> extends SettingBase<T> {
  readonly kind: 'list';
  readonly item: Setting<unknown>;
  readonly default?: readonly unknown[];
  readonly minItems?: number;
}

export interface SectionSetting<T> extends SettingBase<T> {
  readonly kind: 'section';
  readonly fields: Readonly<Record<string, Setting<unknown>>>;
  /** Checks across fields, once each field decoded without issues. */
  check?(value: T, path: ConfigPath, issues: ConfigIssue[]): void;
}

export type Setting<T> = ValueSetting<T> | ListSetting<T> | SectionSetting<T>;

export type Infer<S> = S extends { readonly __type?: { readonly value: infer T } } ? T : never;

export type SectionValue<F extends Record<string, Setting<unknown>>> = { readonly [K in keyof F]: Infer<F[K]> };

/**
 * The text of a raw value in a message: strings quoted (at most QUOTE_MAX_CHARS of them, secrets
 * masked by the setting's `shown`), the rest as YAML would show it.
 */
export function show(raw: unknown, setting?: Pick<SettingBase<unknown>, 'shown'>): string {
  if (typeof raw === 'string') return quoted(setting?.shown ? setting.shown(raw) : raw);
  if (raw === null) return 'null';
  if (Array.isArray(raw)) return 'a list';
  if (typeof raw === 'number' || typeof raw === 'boolean') return raw.toString();
  return raw === undefined ? 'nothing' : 'a mapping';
}

function notAllowed(raw: unknown, setting: Pick<SettingBase<unknown>, 'shown' | 'allowed'>): string {
  return `${show(raw, setting)} is not allowed: use ${setting.allowed}`;
}

type Common = Pick<SettingBase<unknown>, 'help' | 'unit' | 'flag' | 'example' | 'shown'> & { readonly default?: unknown };

/** Absent means undefined: no default and not required. */
export function optional<T>(setting: ValueSetting<T>): ValueSetting<T | undefined> {
  return { ...setting, optional: true };
}

/** A whole number within [min, max]; flags give it as decimal text. */
export function integer(spec: Common & { readonly min: number; readonly max?: number; readonly type?: string; readonly allowed?: string }): ValueSetting<number> {
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  const allowed = spec.max === undefined ? `an integer of at least ${spec.min}` : `an integer from ${spec.min} to ${max}`;
  return {
    kind: 'value',
    type: 'integer',
    allowed,
    ...spec,
    flag: spec.flag && { toRaw: (t: string) => (/^\d+$/.test(t) ? Number(t) : t), ...spec.flag },
    parse: (raw) => (typeof raw === 'number' && Number.isInteger(raw) && raw >= spec.min && raw <= max ? raw : refused()),
  };
}

export function port(spec: Common): ValueSetting<number> {
  return integer({ ...spec, min: 1, max: 65535, type: 'port', allowed: 'a port from 1 to 65535' });
}

/** A duration in milliseconds, at least `min`. */
export function milliseconds(spec: Common & { readonly min: number; readonly max?: number }): ValueSetting<number> {
  return integer({ ...spec, unit: 'ms' });
}

/** A 32-bit mark: a number, or text in decimal or 0x hex. */
export function mark(spec: Common): ValueSetting<number> {
  return {
    kind: 'value',
    type: 'mark',
    allowed: 'a 32-bit number, decimal or hex (e.g. 0x1)',
    ...spec,
    parse: (raw) => {
      const n = typeof raw === 'string' && /^(0x[0-9a-f]{1,8}|\d{1,10})$/i.test(raw) ? Number(raw) : raw;
      return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : refused();
    },
  };
}

export function oneOf<const V extends string>(choices: readonly V[], spec: Common): ValueSetting<V> {
  return {
    kind: 'value',
    type: choices.join(' | '),
    choices,
    allowed: `one of ${choices.join(', ')}`,
    ...spec,
    parse: (raw) => {
      if ((choices as readonly unknown[]).includes(raw)) return raw as V;
      const near = typeof raw === 'string' ? didYouMean(raw, choices) : undefined;
      return refused(near ? `use one of ${choices.join(', ')} (did you mean ${near}?)` : '');
    },
  };
}

export function boolean(spec: Common): ValueSetting<boolean> {
  return { kind: 'value', type: 'boolean', allowed: 'true or false', ...spec, parse: (raw) => (typeof raw === 'boolean' ? raw : refused()) };
}

/** Text that `parse` accepts (default: any text). */
export function text<T = string>(spec: Common & { readonly type?: string; readonly allowed: string; readonly parse?: (text: string) => T | Refusal }): ValueSetting<T> {
  const { parse, ...rest } = spec;
  return {
    kind: 'value',
    type: 'text',
    ...rest,
    parse: (raw) => {
      if (typeof raw !== 'string') return refused();
      return parse ? parse(raw) : (raw as T);
    },
  };
}

export function list<I>(item: Setting<I>, spec: Pick<SettingBase<unknown>, 'help' | 'unit' | 'flag' | 'example'> & { readonly default?: readonly unknown[]; readonly minItems?: number; readonly allowed?: string }): ListSetting<readonly I[]> {
  return { kind: 'list', item: item, allowed: spec.allowed ?? `a list of ${item.allowed.replace(/^(a|an|one of) /, '')}`, ...spec };
}

export function section<F extends Record<string, Setting<unknown>>>(spec: { readonly help: string; readonly fields: F; readonly check?: (value: SectionValue<F>, path: ConfigPath, issues: ConfigIssue[]) => void }): SectionSetting<SectionValue<F>> {
  return { kind: 'section', allowed: `a mapping of ${Object.keys(spec.fields).join(', ')}`, ...spec };
}

function isMapping(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw);
}

/**
 * Decode `raw` (undefined: absent) with `setting`. Issues are collected, not thrown; the result is
 * undefined when any issue was found below this point.
 */
export function decode<T>(setting: Setting<T>, raw: unknown, path: ConfigPath, issues: ConfigIssue[]): T | undefined {
  const before = issues.length;
  const out = decodeAny(setting, raw, path, issues);
  return issues.length === before ? (out as T) : undefined;
}

function decodeAny(setting: Setting<unknown>, raw: unknown, path: ConfigPath, issues: ConfigIssue[]): unknown {
  switch (setting.kind) {
    case 'value': {
      if (raw === undefined || raw === null) {
        if (setting.default !== undefined) return decodeAny(setting, setting.default, path, issues);
        if (setting.optional) return undefined;
        issues.push({ path, message: `missing: use ${setting.allowed}` });
        return undefined;
      }
      const out = setting.parse(raw);
      if (!isRefusal(out)) return out;
      issues.push({ path, message: out.refused === '' ? notAllowed(raw, setting) : `${show(raw, setting)} is not allowed: ${out.refused}` });
      return undefined;
    }
    case 'list': {
      const items = raw === undefined || raw === null ? (setting.default ?? []) : raw;
      if (!Array.isArray(items)) {
        issues.push({ path, message: notAllowed(raw, setting) });
        return undefined;
      }
      if (items.length < (setting.minItems ?? 0)) {
        issues.push({ path, message: `needs at least ${setting.minItems} item${setting.minItems === 1 ? '' : 's'}: use ${setting.allowed}` });
        return undefined;
      }
      return items.map((item, i) => decodeAny(setting.item, item, [...path, i], issues));
    }
    case 'section': {
      const fields = raw === undefined || raw === null ? {} : raw;
      if (!isMapping(fields)) {
        issues.push({ path, message: notAllowed(raw, setting) });
        return undefined;
      }
      const names = Object.keys(setting.fields);
      for (const key of Object.keys(fields)) {
        if (names.includes(key)) continue;
        const near = didYouMean(key, names);
        issues.push({ path: [...path, key], atKey: true, message: `unknown setting${near ? `: did you mean ${near}?` : ''} (allowed here: ${names.join(', ')})` });
      }
      const before = issues.length;
      const out: Record<string, unknown> = {};
      for (const name of names) out[name] = decodeAny(setting.fields[name] as Setting<unknown>, fields[name], [...path, name], issues);
      if (issues.length === before) setting.check?.(out, path, issues);
      return out;
    }
  }
}

/**
 * What runs here, for the commands that judge it (doctor, rules status, status): the options
 * given (--config and flags) win; without any, the running daemon is asked over its admin socket
 * for the configuration in force; without a daemon, the record our rules carry in the kernel
 * (fwmark, route table, rule priority, families) is laid over the defaults; else the defaults.
 */
import { loadConfig } from '../core/config/document.js';
import { rulesConfigOf } from '../core/config/rules-of.js';
import type { RulesConfig } from '../core/rules/config.js';
import type { RulesRecord } from '../core/rules/record.js';
import type { BackendChoice } from '../control/backend.js';
import { tcpLimitsOf, type TcpLimits } from '../daemon/admin-protocol.js';
import { discoverDaemon } from '../daemon/discover.js';
import type { CommandRunner } from '../sys/exec.js';
import { configFrom, type SelectionValues } from './selection.js';

export type ConfigSource =
  | { readonly kind: 'options'; readonly file?: string }
  | { readonly kind: 'daemon'; readonly pid: number; readonly socket: string; readonly file?: string }
  | { readonly kind: 'record'; readonly where: string; readonly owner?: number; readonly daemonAsked: boolean }
  | { readonly kind: 'defaults'; readonly daemonAsked: boolean };

export interface RunningConfig {
  readonly source: ConfigSource;
  readonly rules: RulesConfig;
  /** False when the rules are managed outside tproxy (rules.apply false, --no-rules). */
  readonly rulesApply: boolean;
  readonly backend: BackendChoice;
  readonly upstream: 'direct' | 'transparent';
  /** Options of `tproxy run` that give this configuration (for fix commands); the daemon's own, passwords masked. */
  readonly argv: readonly string[];
  /** The TCP listeners' configured caps and engine. */
  readonly tcp: readonly TcpLimits[];
}

/** Where the record of our rules was found, and the record. */
export interface FoundRecord {
  readonly record: RulesRecord;
  /** `table inet tproxy_rules`, `iptables mangle (legacy)`, ... */
  readonly where: string;
  readonly backend: BackendChoice;
  /** Lays what the kernel records over the defaults (the record's fields, and our table's listeners where it can read them). */
  readonly overlay?: (defaults: RulesConfig) => RulesConfig;
}

export interface DiscoveryDeps {
  /** Commands in the network namespace being judged. */
  readonly runner: CommandRunner;
  /** Our record in the kernel, when there is one. */
  readonly record: () => Promise<FoundRecord | undefined>;
  /** False to skip asking a daemon (a saved snapshot is judged, not this host). */
  readonly askDaemon?: boolean;
}

/** Options that select a configuration (everything but the command's own switches). */
export function selectsConfig(values: Readonly<Record<string, unknown>>, own: readonly string[]): boolean {
  return Object.entries(values).some(([name, value]) => !own.includes(name) && value !== undefined);
}

export function describeSource(source: ConfigSource): string {
  switch (source.kind) {
    case 'options':
      return `configuration: the options given${source.file !== undefined ? ` (--config ${source.file})` : ''}`;
    case 'daemon':
      return `configuration: the running daemon's (tproxy run pid ${source.pid}, asked on ${source.socket}${source.file !== undefined ? `; file ${source.file}` : ''})`;
    case 'record':
      return `configuration: what ${source.where} records${source.owner !== undefined ? ` (applied by tproxy run pid ${source.owner})` : ''}, over the defaults (${source.daemonAsked ? 'no daemon answers here' : 'a saved state: no daemon asked'})`;
    case 'defaults':
      return `configuration: the defaults (no options given, ${source.daemonAsked ? 'no daemon answers here' : 'a saved state: no daemon asked'}, no rules of ours)`;
  }
}

export async function runningConfig(values: SelectionValues, given: boolean, argv: readonly string[], deps: DiscoveryDeps): Promise<RunningConfig> {
  if (given) {
    const config = await configFrom(values);
    const file = typeof values.config === 'string' ? values.config : undefined;
    return {
      source: { kind: 'options', ...(file !== undefined ? { file } : {}) },
      rules: rulesConfigOf(config),
      rulesApply: config.rules.apply,
      backend: config.rules.backend,
      upstream: config.listeners.some((l) => l.upstream === 'transparent') ? 'transparent' : 'direct',
      argv,
      tcp: tcpLimitsOf(config),
    };
  }
  const found = await deps.record();
  const daemon = deps.askDaemon === false ? undefined : await discoverDaemon(deps.runner, found?.record.owner);
  if (daemon) {
    const c = daemon.config;
    return {
      source: { kind: 'daemon', pid: c.pid, socket: daemon.socket, ...(c.file !== undefined ? { file: c.file } : {}) },
      rules: c.rules,
      rulesApply: c.rulesApply,
      backend: c.backend,
      upstream: c.upstream,
      argv: c.argv,
      tcp: c.tcp ?? [],
    };
  }
  const defaults = loadConfig({}, { values: {} });
  const base = rulesConfigOf(defaults);
  const daemonAsked = deps.askDaemon !== false;
  if (!found) return { source: { kind: 'defaults', daemonAsked }, rules: base, rulesApply: true, backend: defaults.rules.backend, upstream: 'direct', argv: [], tcp: tcpLimitsOf(defaults) };
  const r = found.record;
  return {
    source: { kind: 'record', where: found.where, ...(r.owner !== undefined ? { owner: r.owner } : {}), daemonAsked },
    rules: found.overlay?.(base) ?? { ...base, families: r.families, listeners: base.listeners.map((l) => ({ ...l, families: r.families })), fwmark: r.fwmark, fwmarkMask: r.fwmarkMask, routeTable: r.routeTable, rulePriority: r.rulePriority },
    rulesApply: true,
    backend: found.backend,
    upstream: 'direct',
    argv: [],
    tcp: tcpLimitsOf(defaults),
  };
}

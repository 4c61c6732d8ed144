/**
 * Options shared by `run` and `rules`: what to intercept and how. One table drives parsing and help.
 */
import net from 'node:net';
import type { ParseArgsConfig } from 'node:util';
import { mergeIntercepts, parseFamily, parseInteger, parseIntercept, parseMark, parsePortOption } from '../core/config/intercept.js';
import { TproxyError, isTproxyError } from '../core/errors.js';
import { DEFAULT_BYPASS_DESTINATIONS, DEFAULT_RULES_CONFIG, FAIL_MODES, type FailMode, type RulesConfig } from '../core/rules/config.js';
import { DSCP_NAMES } from '../core/rules/dscp.js';
import { planRules } from '../core/rules/plan.js';
import type { RulesPlan } from '../core/rules/ruleset.js';
import { BACKEND_CHOICES, chooseBackend, type BackendChoice, type BackendName } from '../control/backend.js';
import { findExecutable, missingCommandError } from '../sys/exec.js';

export const SELECTION_OPTIONS = {
  listen: { type: 'string', default: '8000' },
  'listen-address': { type: 'string', multiple: true },
  intercept: { type: 'string', multiple: true },
  iface: { type: 'string', multiple: true },
  family: { type: 'string', default: 'both' },
  'bypass-dst': { type: 'string', multiple: true },
  'bypass-src': { type: 'string', multiple: true },
  'no-default-bypass': { type: 'boolean', default: false },
  local: { type: 'boolean', default: false },
  'local-exclude-uid': { type: 'string', multiple: true },
  'local-exclude-gid': { type: 'string', multiple: true },
  'set-mark': { type: 'string' },
  'set-dscp': { type: 'string' },
  'set-ttl': { type: 'string' },
  'fail-mode': { type: 'string', default: DEFAULT_RULES_CONFIG.failMode },
  fwmark: { type: 'string', default: '0x1' },
  'fwmark-mask': { type: 'string', default: '0x1' },
  'upstream-mark': { type: 'string', default: '0x2' },
  'route-table': { type: 'string', default: '100' },
  'rule-priority': { type: 'string', default: '9000' },
  table: { type: 'string', default: DEFAULT_RULES_CONFIG.tableName },
  backend: { type: 'string', default: 'auto' },
} as const satisfies ParseArgsConfig['options'];

export const SELECTION_HELP = `  --listen PORT          local port of the proxy (TCP and UDP), default 8000
  --listen-address ADDR  listen on this address only (one IPv4 and/or one IPv6, repeatable;
                         default: every address of the host); the tproxy rules redirect to it
  --intercept PROTO:PORTS  traffic to intercept, repeatable: tcp:80,443  udp:53  tcp:8000-8100
                         (default tcp:80,443)
  --iface NAME           only intercept traffic arriving on NAME, repeatable (default: all)
  --family 4|6|both      address families, default both
  --bypass-dst CIDR      never intercept traffic to CIDR, repeatable (named sets bypass_daddr4/6);
                         added to the defaults: ${DEFAULT_BYPASS_DESTINATIONS.join(' ')}
  --bypass-src CIDR      never intercept traffic from CIDR, repeatable (sets bypass_saddr4/6)
  --no-default-bypass    drop the default destination prefixes (local, broadcast and multicast
                         destinations of this host are always bypassed)
  --local                also intercept this host's own traffic (output chain marks it, it is
                         rerouted through lo; the proxy's upstream mark is excluded)
  --local-exclude-uid N  with --local: never intercept processes of user id N, repeatable
  --local-exclude-gid N  with --local: never intercept processes of group id N, repeatable
  --set-mark V[/M]       also set these mark bits on intercepted packets (outside --fwmark-mask)
  --set-dscp N|NAME      also set DSCP on intercepted packets (0-63, or ef, af11, cs1, ...)
  --set-ttl N            also set TTL / hop limit on intercepted packets (1-255)
  --fail-mode open|drop|reject  while no proxy socket exists: let intercepted traffic go its
                         normal way (open), or drop / reject it (fail closed). Default drop: a
                         proxy put in the path is never silently bypassed (xt TPROXY drops too);
                         tproxy run removes its rules on a clean stop
  --fwmark N             mark of intercepted packets, default 0x1
  --fwmark-mask N        mask for the mark, default 0x1
  --upstream-mark N      SO_MARK of the proxy's own upstream sockets, default 0x2
  --route-table N        policy routing table for local delivery, default 100
  --rule-priority N      priority of the fwmark ip rule, default 9000
  --table NAME           name of the nftables table we own (family inet; iptables: chain prefix),
                         default tproxy
  --backend auto|nft|iptables|iptables-legacy|iptables-nft
                         how rules are written; auto: nftables when nft is installed, else
                         iptables-restore (legacy or nft flavour, whichever is the system's)`;

export interface SelectionValues {
  listen?: string;
  'listen-address'?: string[];
  intercept?: string[];
  iface?: string[];
  family?: string;
  'bypass-dst'?: string[];
  'bypass-src'?: string[];
  'no-default-bypass'?: boolean;
  local?: boolean;
  'local-exclude-uid'?: string[];
  'local-exclude-gid'?: string[];
  'set-mark'?: string;
  'set-dscp'?: string;
  'set-ttl'?: string;
  'fail-mode'?: string;
  fwmark?: string;
  'fwmark-mask'?: string;
  'upstream-mark'?: string;
  'route-table'?: string;
  'rule-priority'?: string;
  table?: string;
  backend?: string;
}

/** The flag behind each config field, added to validation errors. */
const FIELD_FLAGS: Readonly<Record<string, string>> = {
  tableName: '--table',
  listenPort: '--listen',
  listenAddresses: '--listen-address',
  families: '--family',
  intercept: '--intercept',
  interfaces: '--iface',
  'bypass.destinations': '--bypass-dst',
  'bypass.sources': '--bypass-src',
  'localTraffic.excludeUids': '--local-exclude-uid',
  'localTraffic.excludeGids': '--local-exclude-gid',
  'mangle.mark': '--set-mark',
  'mangle.dscp': '--set-dscp',
  'mangle.ttl': '--set-ttl',
  failMode: '--fail-mode',
  fwmark: '--fwmark / --fwmark-mask',
  upstreamMark: '--upstream-mark',
  routeTable: '--route-table',
  rulePriority: '--rule-priority',
};

function integer(name: string, text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : parseInteger(name, text, 0);
}

function ids(name: string, texts: readonly string[] | undefined): number[] {
  return (texts ?? []).map((t) => integer(name, t, 0));
}

function parseSetMark(text: string): { value: number; mask: number } {
  const [value = '', mask] = text.split('/');
  const v = parseMark('set-mark', value);
  return { value: v, mask: mask === undefined ? 0xffffffff : parseMark('set-mark', mask) };
}

function parseDscp(text: string): number {
  const named = DSCP_NAMES[text.toLowerCase()];
  if (named !== undefined) return named;
  if (/^(0x[0-9a-f]+|\d+)$/i.test(text)) return Number(text);
  throw new TproxyError('ERR_INVALID_ARGUMENT', `--set-dscp ${text}: use a number 0-63 or a name (${Object.keys(DSCP_NAMES).join(', ')})`, { value: text });
}

function parseListenAddresses(texts: readonly string[]): RulesConfig['listenAddresses'] {
  const out: { 4?: string; 6?: string } = {};
  for (const text of texts) {
    const family = net.isIPv4(text) ? 4 : net.isIPv6(text) ? 6 : undefined;
    if (family === undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', `--listen-address ${text}: not an IPv4 or IPv6 address`, { value: text });
    if (out[family] !== undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', `--listen-address ${text}: one address per family (IPv${family} already ${out[family]})`, { value: text });
    out[family] = text;
  }
  return out;
}

function parseFailMode(text: string): FailMode {
  if ((FAIL_MODES as readonly string[]).includes(text)) return text as FailMode;
  throw new TproxyError('ERR_INVALID_ARGUMENT', `--fail-mode ${text}: use ${FAIL_MODES.join(', ')}`, { value: text });
}

export function rulesConfigFrom(values: SelectionValues): RulesConfig {
  const intercept = mergeIntercepts((values.intercept ?? ['tcp:80,443']).map(parseIntercept));
  if (!values.local && ((values['local-exclude-uid']?.length ?? 0) > 0 || (values['local-exclude-gid']?.length ?? 0) > 0)) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', '--local-exclude-uid / --local-exclude-gid only make sense with --local (interception of this host\'s own traffic)');
  }
  return {
    tableName: values.table ?? DEFAULT_RULES_CONFIG.tableName,
    listenPort: parsePortOption('listen', values.listen ?? '8000'),
    listenAddresses: parseListenAddresses(values['listen-address'] ?? []),
    families: parseFamily(values.family ?? 'both'),
    intercept,
    interfaces: values.iface ?? [],
    bypass: {
      destinations: [...(values['no-default-bypass'] ? [] : DEFAULT_BYPASS_DESTINATIONS), ...(values['bypass-dst'] ?? [])],
      sources: values['bypass-src'] ?? [],
    },
    ...(values.local ? { localTraffic: { excludeUids: ids('local-exclude-uid', values['local-exclude-uid']), excludeGids: ids('local-exclude-gid', values['local-exclude-gid']) } } : {}),
    mangle: {
      ...(values['set-mark'] !== undefined ? { mark: parseSetMark(values['set-mark']) } : {}),
      ...(values['set-dscp'] !== undefined ? { dscp: parseDscp(values['set-dscp']) } : {}),
      ...(values['set-ttl'] !== undefined ? { ttl: integer('set-ttl', values['set-ttl'], 0) } : {}),
    },
    failMode: parseFailMode(values['fail-mode'] ?? DEFAULT_RULES_CONFIG.failMode),
    fwmark: parseMark('fwmark', values.fwmark ?? '0x1'),
    fwmarkMask: parseMark('fwmark-mask', values['fwmark-mask'] ?? '0x1'),
    upstreamMark: parseMark('upstream-mark', values['upstream-mark'] ?? '0x2'),
    routeTable: integer('route-table', values['route-table'], DEFAULT_RULES_CONFIG.routeTable),
    rulePriority: integer('rule-priority', values['rule-priority'], DEFAULT_RULES_CONFIG.rulePriority),
  };
}

/** Plan the rules; a validation error also names the flag behind the config field. */
export function planFromConfig(config: RulesConfig): RulesPlan {
  try {
    return planRules(config);
  } catch (error) {
    const field = isTproxyError(error, 'ERR_INVALID_ARGUMENT') && typeof error.details.field === 'string' ? error.details.field : '';
    const flag = FIELD_FLAGS[field];
    if (isTproxyError(error) && flag) throw new TproxyError(error.code, `${error.message} (${flag})`, error.details, { cause: error });
    throw error;
  }
}

export function parseBackendChoice(text: string): BackendChoice {
  if ((BACKEND_CHOICES as readonly string[]).includes(text)) return text as BackendChoice;
  throw new TproxyError('ERR_INVALID_ARGUMENT', `--backend ${text}: use ${BACKEND_CHOICES.join(', ')}`, { value: text });
}

/** The backend to use on this host (nft if installed, unless forced), and `ip`, which every backend needs. */
export function backendFrom(values: SelectionValues, has: (binary: string) => boolean = (b) => findExecutable(b) !== undefined): BackendName {
  const backend = chooseBackend(parseBackendChoice(values.backend ?? 'auto'), has);
  if (!has('ip')) throw missingCommandError('ip');
  return backend;
}

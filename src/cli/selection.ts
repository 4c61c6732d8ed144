/**
 * Options shared by `run` and `rules`: what to intercept and how. One table drives parsing and help.
 */
import type { ParseArgsConfig } from 'node:util';
import { mergeIntercepts, parseFamily, parseIntercept, parseMark, parsePortOption } from '../core/config/intercept.js';
import { TproxyError } from '../core/errors.js';
import { DEFAULT_RULES_CONFIG, type RulesConfig } from '../core/rules/plan.js';

export const SELECTION_OPTIONS = {
  listen: { type: 'string', default: '8000' },
  intercept: { type: 'string', multiple: true },
  iface: { type: 'string', multiple: true },
  family: { type: 'string', default: 'both' },
  fwmark: { type: 'string', default: '0x1' },
  'fwmark-mask': { type: 'string', default: '0x1' },
  'upstream-mark': { type: 'string', default: '0x2' },
  'route-table': { type: 'string', default: '100' },
  'rule-priority': { type: 'string', default: '9000' },
  table: { type: 'string', default: 'tproxy' },
} as const satisfies ParseArgsConfig['options'];

export const SELECTION_HELP = `  --listen PORT          local port of the proxy (TCP and UDP), default 8000
  --intercept PROTO:PORTS  traffic to intercept, repeatable: tcp:80,443  udp:53  tcp:8000-8100
                         (default tcp:80,443)
  --iface NAME           only intercept traffic arriving on NAME, repeatable (default: all)
  --family 4|6|both      address families, default both
  --fwmark N             mark of intercepted packets, default 0x1
  --fwmark-mask N        mask for the mark, default 0x1
  --upstream-mark N      SO_MARK of the proxy's own upstream sockets, default 0x2
  --route-table N        policy routing table for local delivery, default 100
  --rule-priority N      priority of the fwmark ip rule, default 9000
  --table NAME           name of the nftables table we own (family inet), default tproxy`;

export interface SelectionValues {
  listen?: string;
  intercept?: string[];
  iface?: string[];
  family?: string;
  fwmark?: string;
  'fwmark-mask'?: string;
  'upstream-mark'?: string;
  'route-table'?: string;
  'rule-priority'?: string;
  table?: string;
}

function integer(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new TproxyError('ERR_INVALID_ARGUMENT', `--${name} ${text}: use a positive integer`, { value: text });
  return Number(text);
}

export function rulesConfigFrom(values: SelectionValues): RulesConfig {
  const intercept = mergeIntercepts((values.intercept ?? ['tcp:80,443']).map(parseIntercept));
  return {
    tableName: values.table ?? DEFAULT_RULES_CONFIG.tableName,
    listenPort: parsePortOption('listen', values.listen ?? '8000'),
    families: parseFamily(values.family ?? 'both'),
    intercept,
    interfaces: values.iface ?? [],
    fwmark: parseMark('fwmark', values.fwmark ?? '0x1'),
    fwmarkMask: parseMark('fwmark-mask', values['fwmark-mask'] ?? '0x1'),
    upstreamMark: parseMark('upstream-mark', values['upstream-mark'] ?? '0x2'),
    routeTable: integer('route-table', values['route-table'], DEFAULT_RULES_CONFIG.routeTable),
    rulePriority: integer('rule-priority', values['rule-priority'], DEFAULT_RULES_CONFIG.rulePriority),
  };
}

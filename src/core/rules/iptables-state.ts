/** Our part of a live mangle table, read from iptables-save: chains, jump rules, the record. Pure. */
import { parseIptablesDump, specComment, specTarget, type IptablesDump } from '../iptables-dump.js';
import { decodeRecord, type RulesRecord } from './record.js';
import { ourChainNames, type BuiltinChain, type IptablesState } from './render-iptables.js';

export interface LiveIptables {
  readonly state: IptablesState;
  readonly record?: RulesRecord;
  /** Counters of our rules: chain -> one entry per rule, in order. */
  readonly counters: ReadonlyMap<string, readonly ({ packets: number; bytes: number } | undefined)[]>;
  /** Chains with our names holding rules that are not ours (no `tproxy` comment). */
  readonly foreignChains: readonly string[];
}

export function liveIptables(dump: IptablesDump | string, tableName: string): LiveIptables {
  const parsed = typeof dump === 'string' ? parseIptablesDump(dump) : dump;
  const names = new Set(ourChainNames(tableName));
  const present = (parsed.chains.get('mangle') ?? []).map((c) => c.name).filter((c) => names.has(c));
  const mangle = parsed.rules.filter((r) => r.table === 'mangle');
  const jumps = mangle
    .filter((r) => (r.chain === 'PREROUTING' || r.chain === 'OUTPUT') && names.has(specTarget(r.spec) ?? ''))
    .map((r) => ({ chain: r.chain as BuiltinChain, spec: r.spec }));
  const chains = present.map((name) => ({ name, specs: mangle.filter((r) => r.chain === name).map((r) => r.spec) }));
  const counters = new Map(present.map((name) => [name, mangle.filter((r) => r.chain === name).map((r) => r.counter)]));
  const foreignChains = chains.filter((c) => c.specs.some((s) => !specComment(s)?.startsWith('tproxy'))).map((c) => c.name);
  const record = jumps.map((j) => decodeRecord(specComment(j.spec))).find((r) => r !== undefined);
  return { state: { jumps, chains }, ...(record ? { record } : {}), counters, foreignChains };
}

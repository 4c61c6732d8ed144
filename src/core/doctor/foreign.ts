/**
 * Rules tproxy does not own: TPROXY rules someone wrote with nft, iptables-nft or iptables-legacy
 * (`tproxy run --no-rules` behind them). Where they live, which packets they take, the mark they
 * set, and the commands in the user's own family that add or correct one. Pure.
 */
import type { Family } from '../net/constants.js';
import { hex, type Packet } from '../model/packet.js';
import { evaluateMatch } from '../model/match.js';
import { fibAddressType, type World } from '../model/world.js';
import { chainId, tableSeesFamily, type Chain, type Rule, type Table, type TproxyStatement } from '../model/ruleset.js';
import type { Snapshot } from '../model/snapshot.js';

export interface ForeignTproxyRule {
  readonly table: Table;
  readonly chain: Chain;
  /** Position in its chain, from 0. */
  readonly index: number;
  readonly rule: Rule;
  readonly tproxy: TproxyStatement;
  /** The mark it gives intercepted packets (xt: --tproxy-mark; nft: the mark statement after it). */
  readonly mark?: { readonly value: number; readonly mask: number };
  /** `ip mangle PREROUTING rule 1`, `inet fw pre handle 4`. */
  readonly where: string;
}

/** Every tproxy statement in a prerouting path outside our table. */
export function foreignTproxyRules(world: World, ourTable: string): ForeignTproxyRule[] {
  const out: ForeignTproxyRule[] = [];
  for (const table of world.ruleset.tables) {
    if (table.origin === 'nft' && table.family === 'inet' && table.name === ourTable) continue;
    // Our iptables backend's chains are named after the table (TPROXY_RULES_*).
    for (const chain of table.chains) {
      if (table.origin !== 'nft' && chain.name.startsWith(`${ourTable.toUpperCase()}_`)) continue;
      chain.rules.forEach((rule, index) => {
        const at = rule.expressions.findIndex((e) => e.kind === 'tproxy');
        if (at < 0) return;
        const tproxy = rule.expressions[at] as TproxyStatement;
        const after = rule.expressions.slice(at + 1).find((e) => e.kind === 'mark');
        const mark = tproxy.onMatchMark ?? (after?.kind === 'mark' ? { value: after.xor, mask: ~after.and >>> 0 } : undefined);
        const where = `${chainId(table, chain)} ${rule.handle !== undefined ? `handle ${rule.handle}` : `rule ${index + 1}`}`;
        out.push({ table, chain, index, rule, tproxy, ...(mark ? { mark } : {}), where });
      });
    }
  }
  return out;
}

/** Whether the rule's matches before its tproxy statement take `packet` (other tables' jumps aside). */
export function takes(world: World, r: ForeignTproxyRule, packet: Packet): boolean {
  if (!tableSeesFamily(r.table, packet.family)) return false;
  if (r.tproxy.family !== undefined && r.tproxy.family !== packet.family) return false;
  const ctx = { sets: r.table.sets, socketFor: () => undefined, fibAddressType: (p: Packet) => fibAddressType(world, p) };
  for (const e of r.rule.expressions) {
    if (e.kind === 'tproxy') return true;
    if (e.kind === 'match' && !evaluateMatch(e, packet, ctx).matched) return false;
  }
  return true;
}

/** The command that edits iptables rules of a family, in the flavour they live in (`iptables` when it is that flavour). */
export function iptablesTool(snapshot: Snapshot, family: Family, legacy: boolean): string {
  const six = family === 6 ? '6' : '';
  if (legacy) return snapshot.iptablesCommand === 'legacy' ? `ip${six}tables` : `ip${six}tables-legacy`;
  return snapshot.iptablesCommand === 'legacy' ? `ip${six}tables-nft` : `ip${six}tables`;
}

function toolFor(snapshot: Snapshot, table: Table): string {
  return iptablesTool(snapshot, table.family === 'ip6' ? 6 : 4, table.origin === 'iptables-legacy');
}

/** The `-A CHAIN ...` line of an iptables rule as iptables-save printed it (without counters). */
function savedLine(snapshot: Snapshot, r: ForeignTproxyRule): string | undefined {
  const source = r.table.origin === 'iptables-legacy' ? snapshot.iptablesLegacy : snapshot.iptables;
  const text = (r.table.family === 'ip6' ? source?.ipv6 : source?.ipv4) ?? '';
  let inMangle = false;
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim().replace(/^\[\d+:\d+\] /, '');
    if (line.startsWith('*')) inMangle = line === '*mangle';
    else if (inMangle && line.startsWith(`-A ${r.chain.name} `)) lines.push(line);
  }
  return lines[r.index];
}

/** The command that makes `r` send to `port` instead (undefined where it cannot be written here). */
export function retargetCommand(snapshot: Snapshot, r: ForeignTproxyRule, port: number): string | undefined {
  if (r.table.origin === 'nft') return undefined;
  const line = savedLine(snapshot, r);
  if (!line || !/--on-port \d+/.test(line)) return undefined;
  const spec = line.slice(`-A ${r.chain.name} `.length).replace(/--on-port \d+/, `--on-port ${port}`);
  return `${toolFor(snapshot, r.table)} -t mangle -R ${r.chain.name} ${r.index + 1} ${spec}`;
}

/**
 * The command that adds interception of `transport`:`dport` to `port`, written like the user's
 * other TPROXY rules (iptables of their flavour, or nft in their chain); iptables by default.
 */
export function addCommand(snapshot: Snapshot, like: ForeignTproxyRule | undefined, family: Family, transport: 'tcp' | 'udp', dport: number, port: number, mark: { value: number; mask: number }): string {
  if (like?.table.origin === 'nft') {
    const inet = like.table.family === 'inet' ? ` ${family === 4 ? 'ip' : 'ip6'}` : '';
    return `nft add rule ${like.table.family} ${like.table.name} ${like.chain.name} ${transport} dport ${dport} tproxy${inet} to :${port} meta mark set ${hex(mark.value)} accept`;
  }
  const table: Table = like && (like.table.family === (family === 4 ? 'ip' : 'ip6')) ? like.table : { family: family === 4 ? 'ip' : 'ip6', name: 'mangle', origin: like?.table.origin ?? 'iptables', chains: [], sets: [] };
  return `${toolFor(snapshot, table)} -t mangle -A ${like?.chain.name ?? 'PREROUTING'} -p ${transport} --dport ${dport} -j TPROXY --tproxy-mark ${hex(mark.value)}/${hex(mark.mask)} --on-port ${port}`;
}

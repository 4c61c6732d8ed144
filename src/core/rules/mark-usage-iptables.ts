/**
 * Which packet-mark bits iptables rules match or set, read from `iptables-save` (all tables), for
 * hosts where the iptables backend is used. Our own chains and jump rules are skipped. Pure.
 */
import { FULL_MASK } from './marks.js';
import type { IptablesDump } from '../iptables-dump.js';
import type { MarkUsage } from './mark-usage.js';
import { ourChainNames } from './render-iptables.js';
import { specTarget } from '../iptables-dump.js';

function valueMask(text: string): { value: number; mask: number } {
  const [value = '0', mask] = text.split('/');
  return { value: Number(value) >>> 0, mask: mask === undefined ? FULL_MASK : Number(mask) >>> 0 };
}

export function markUsageFromIptables(dump: IptablesDump, tool: string, tableName: string): MarkUsage[] {
  const ours = new Set(ourChainNames(tableName));
  const usages: MarkUsage[] = [];
  for (const rule of dump.rules) {
    if (ours.has(rule.chain) || ours.has(specTarget(rule.spec) ?? '')) continue;
    const where = `${tool} -t ${rule.table} -A ${rule.chain} ${rule.spec}`;
    const match = /-m mark (!\s)?--mark (\S+)/.exec(rule.spec);
    if (match?.[2] && !match[1]) usages.push({ kind: 'match', mark: valueMask(match[2]), where });
    const set = /-j MARK --set-xmark (\S+)/.exec(rule.spec);
    if (set?.[1]) usages.push({ kind: 'set', mark: valueMask(set[1]), where });
    const tproxy = /-j TPROXY .*--tproxy-mark (\S+)/.exec(rule.spec);
    if (tproxy?.[1]) usages.push({ kind: 'set', mark: valueMask(tproxy[1]), where });
    if (/-j CONNMARK .*--restore-mark/.test(rule.spec)) {
      const nfmask = /--nfmask (\S+)/.exec(rule.spec)?.[1];
      usages.push({ kind: 'copy', mark: { value: 0, mask: nfmask ? Number(nfmask) >>> 0 : FULL_MASK }, where });
    }
  }
  return usages;
}

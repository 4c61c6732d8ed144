/**
 * `iptables-save [-c]` output as a dump: tables, chain names and rule specs as text with their
 * counters, for status and mark-collision checks on our own chains. The kernel model reads the same
 * text into its ruleset with model/iptables-save.ts (parseIptablesSave). Pure.
 */

export interface IptablesRule {
  readonly table: string;
  readonly chain: string;
  /** Everything after `-A CHAIN `, exactly as iptables-save prints it. */
  readonly spec: string;
  readonly counter?: { readonly packets: number; readonly bytes: number };
}

export interface IptablesDump {
  /** table -> chain names (built-in and user-defined). */
  readonly chains: ReadonlyMap<string, readonly string[]>;
  readonly rules: readonly IptablesRule[];
}

export function parseIptablesDump(text: string): IptablesDump {
  const chains = new Map<string, string[]>();
  const rules: IptablesRule[] = [];
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line === 'COMMIT') continue;
    if (line.startsWith('*')) {
      table = line.slice(1);
      if (!chains.has(table)) chains.set(table, []);
      continue;
    }
    if (line.startsWith(':')) {
      chains.get(table)?.push(line.slice(1).split(' ')[0] ?? '');
      continue;
    }
    const match = /^(?:\[(\d+):(\d+)\] )?-A (\S+) (.*)$/.exec(line);
    if (!match) continue;
    const [, packets, bytes, chain = '', spec = ''] = match;
    rules.push({ table, chain, spec, ...(packets !== undefined ? { counter: { packets: Number(packets), bytes: Number(bytes) } } : {}) });
  }
  return { chains, rules };
}

/** The `--comment` of a rule spec, if any. */
export function specComment(spec: string): string | undefined {
  const match = /-m comment --comment (?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(spec);
  return match ? (match[1] ?? match[2])?.replace(/\\(.)/g, '$1') : undefined;
}

/** The `-j TARGET` of a rule spec, if any. */
export function specTarget(spec: string): string | undefined {
  return /(?:^| )-j (\S+)/.exec(spec)?.[1];
}

/**
 * The one reader of `iptables-save [-c]` output: tables, their chains (with policies) and rule specs
 * as text with their counters. Status and the mark-collision checks on our own chains read it as it
 * is; the kernel model (model/iptables-save.ts) gives the mangle table's rules their meaning. Pure.
 */

export interface IptablesRule {
  readonly table: string;
  readonly chain: string;
  /** Everything after `-A CHAIN `, exactly as iptables-save prints it. */
  readonly spec: string;
  /** The whole line (counters and `-A CHAIN` included), for the model and for error messages. */
  readonly line: string;
  readonly counter?: { readonly packets: number; readonly bytes: number };
}

export interface IptablesChain {
  readonly name: string;
  /** ACCEPT or DROP for a built-in chain; `-` for a user-defined one. */
  readonly policy: string;
}

export interface IptablesDump {
  /** table -> its chains (built-in and user-defined), in the order listed. */
  readonly chains: ReadonlyMap<string, readonly IptablesChain[]>;
  readonly rules: readonly IptablesRule[];
  /** Lines of a table that are neither a chain nor an `-A` rule (iptables-save writes none). */
  readonly unread: readonly { readonly table: string; readonly line: string }[];
}

export function parseIptablesDump(text: string): IptablesDump {
  const chains = new Map<string, IptablesChain[]>();
  const rules: IptablesRule[] = [];
  const unread: { table: string; line: string }[] = [];
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
      const [name = '', policy = '-'] = line.slice(1).split(/\s+/);
      chains.get(table)?.push({ name, policy });
      continue;
    }
    const match = /^(?:\[(\d+):(\d+)\] )?-A (\S+) (.*)$/.exec(line);
    if (!match) {
      unread.push({ table, line });
      continue;
    }
    const [, packets, bytes, chain = '', spec = ''] = match;
    rules.push({ table, chain, spec, line, ...(packets !== undefined ? { counter: { packets: Number(packets), bytes: Number(bytes) } } : {}) });
  }
  return { chains, rules, unread };
}

/** A rule spec's words as iptables-save quotes them ("..." with backslash escapes, as one word). */
export function specTokens(spec: string): string[] {
  const tokens: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(spec); m; m = re.exec(spec)) tokens.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return tokens;
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

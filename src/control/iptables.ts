/**
 * Driving `iptables-restore` / `iptables-save` (and the ip6tables pair) of one flavour: legacy
 * (x_tables), nft (iptables over nf_tables), or whichever the system's `iptables-restore` is.
 * Only this file reads their stderr.
 */
import { TproxyError, isTproxyError } from '../core/errors.js';
import type { Family } from '../core/net/constants.js';
import type { CommandRunner } from '../sys/exec.js';

export type IptablesFlavour = 'legacy' | 'nft' | 'system';

export function iptablesBinary(flavour: IptablesFlavour, family: Family, tool: 'restore' | 'save'): string {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  return flavour === 'system' ? `${base}-${tool}` : `${base}-${flavour}-${tool}`;
}

/** Kernel options behind the xt extensions we use. */
const EXTENSIONS: Readonly<Record<string, string>> = {
  TPROXY: 'CONFIG_NETFILTER_XT_TARGET_TPROXY (module xt_TPROXY) and CONFIG_NF_TPROXY_IPV4/IPV6',
  socket: 'CONFIG_NETFILTER_XT_MATCH_SOCKET (module xt_socket)',
  MARK: 'CONFIG_NETFILTER_XT_MARK (module xt_mark)',
  mark: 'CONFIG_NETFILTER_XT_MARK (module xt_mark)',
  addrtype: 'CONFIG_NETFILTER_XT_MATCH_ADDRTYPE (module xt_addrtype)',
  comment: 'CONFIG_NETFILTER_XT_MATCH_COMMENT (module xt_comment)',
  multiport: 'CONFIG_NETFILTER_XT_MATCH_MULTIPORT (module xt_multiport)',
  owner: 'CONFIG_NETFILTER_XT_MATCH_OWNER (module xt_owner)',
  DSCP: 'CONFIG_NETFILTER_XT_TARGET_DSCP (module xt_DSCP)',
  TTL: 'CONFIG_NETFILTER_XT_TARGET_HL (module xt_HL)',
  HL: 'CONFIG_NETFILTER_XT_TARGET_HL (module xt_HL)',
};

export function explainIptablesError(error: unknown, family: Family): never {
  if (isTproxyError(error, 'ERR_COMMAND_FAILED')) {
    const stderr = String(error.details.stderr ?? '');
    if (/Permission denied|you must be root|Operation not permitted/i.test(stderr)) {
      throw new TproxyError('ERR_PRIVILEGE', 'iptables needs CAP_NET_ADMIN: run as root (or grant the capability)', error.details, { cause: error });
    }
    const extension = /Couldn't load (?:match|target) `([\w]+)'|Extension ([\w]+) revision \d+ not supported/.exec(stderr);
    const name = extension?.[1] ?? extension?.[2];
    if (name) {
      throw new TproxyError('ERR_KERNEL_FEATURE', `the kernel lacks the iptables extension ${name}: it needs ${EXTENSIONS[name] ?? `the xt_${name} module`}. iptables said: ${stderr.split('\n')[0] ?? ''}`, error.details, { cause: error });
    }
    if (/Table does not exist|can't initialize/i.test(stderr)) {
      const option = family === 4 ? 'CONFIG_IP_NF_MANGLE (module iptable_mangle)' : 'CONFIG_IP6_NF_MANGLE (module ip6table_mangle)';
      throw new TproxyError('ERR_KERNEL_FEATURE', `the kernel has no mangle table for IPv${family}: it needs ${option} (or, for iptables-nft, CONFIG_NF_TABLES and CONFIG_NFT_COMPAT). iptables said: ${stderr.split('\n')[0] ?? ''}`, error.details, { cause: error });
    }
  }
  throw error;
}

export class Iptables {
  constructor(
    private readonly runner: CommandRunner,
    readonly flavour: IptablesFlavour,
    readonly family: Family,
  ) {}

  /** The restore command (argv) that applies `input` without touching other chains. */
  restoreArgv(): string[] {
    return [iptablesBinary(this.flavour, this.family, 'restore'), '-w', '10', '--noflush'];
  }

  /** `iptables-save -c [-t TABLE]`, with counters. */
  async save(table?: string): Promise<string> {
    const argv = [iptablesBinary(this.flavour, this.family, 'save'), '-c', ...(table ? ['-t', table] : [])];
    const result = await this.runner.run(argv).catch((e: unknown) => explainIptablesError(e, this.family));
    return result.stdout;
  }

  /** Parse and check `input` in the kernel without committing. */
  async test(input: string): Promise<void> {
    await this.runner.run([...this.restoreArgv(), '--test'], { input }).catch((e: unknown) => explainIptablesError(e, this.family));
  }

  /** Commit `input`: each table section is one transaction. */
  async restore(input: string): Promise<void> {
    await this.runner.run(this.restoreArgv(), { input }).catch((e: unknown) => explainIptablesError(e, this.family));
  }
}

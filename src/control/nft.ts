/**
 * Driving the `nft` binary: check a script, apply it in one transaction, list our table (text, for
 * rollback and the record in its comment) and rulesets (JSON). Only this file reads nft's stderr.
 */
import { TproxyError, isTproxyError } from '../core/errors.js';
import { parseNftListing, type NftListing } from '../core/nft-listing.js';
import { commandFailedError, type CommandRunner } from '../sys/exec.js';

/** Kernel options behind the nft expressions we use, by the word nft shows in its error. */
const FEATURES: readonly [RegExp, string][] = [
  [/\btproxy\b/, 'CONFIG_NFT_TPROXY (module nft_tproxy) and CONFIG_NF_TPROXY_IPV4/IPV6'],
  [/\bsocket\b/, 'CONFIG_NFT_SOCKET (module nft_socket)'],
  [/\bfib\b/, 'CONFIG_NFT_FIB_INET (module nft_fib_inet)'],
  [/\breject\b/, 'CONFIG_NFT_REJECT_INET (module nft_reject_inet)'],
];

/** The part of the script nft underlines with ^^^ under the failing line, or all of stderr. */
function failingPart(stderr: string): string {
  const lines = stderr.split('\n');
  const carets = lines.findIndex((l) => /^\s*\^[\^~]*\s*$/.test(l));
  const code = lines[carets - 1];
  if (carets < 1 || code === undefined) return stderr;
  const marks = lines[carets] ?? '';
  const start = marks.indexOf('^');
  return code.slice(start, marks.trimEnd().length);
}

/** Turn a failed nft run into the error a user can act on. */
export function explainNftError(error: unknown): never {
  if (isTproxyError(error, 'ERR_COMMAND_FAILED')) {
    const stderr = String(error.details.stderr ?? '');
    if (/Operation not permitted|Permission denied/i.test(stderr)) {
      throw new TproxyError('ERR_PRIVILEGE', 'nft needs CAP_NET_ADMIN: run as root (or grant the capability)', error.details, { cause: error });
    }
    if (/Could not process rule: (No such file or directory|Operation not supported)/i.test(stderr)) {
      const part = failingPart(stderr);
      const needed = FEATURES.filter(([word]) => word.test(part)).map(([, option]) => option);
      throw new TproxyError(
        'ERR_KERNEL_FEATURE',
        `the kernel rejected an nftables expression: it needs ${needed.length > 0 ? needed.join(', ') : 'an nftables module that is missing'} (load the module, e.g. modprobe nft_tproxy nft_socket, or use a kernel built with it). nft said: ${stderr.split('\n')[0] ?? ''}`,
        error.details,
        { cause: error },
      );
    }
    if (/Protocol not supported|Address family not supported/i.test(stderr)) {
      throw new TproxyError('ERR_KERNEL_FEATURE', `the kernel has no nf_tables (CONFIG_NF_TABLES, CONFIG_NF_TABLES_INET): use a kernel with it, or the iptables backend (--backend iptables). nft said: ${stderr.split('\n')[0] ?? ''}`, error.details, { cause: error });
    }
  }
  throw error;
}

function notFound(stderr: string): boolean {
  return /No such file or directory/.test(stderr);
}

export class Nft {
  constructor(private readonly runner: CommandRunner) {}

  /** `nft --check -f -`: parse and validate in the kernel without committing. */
  async check(script: string): Promise<void> {
    await this.runner.run(['nft', '--check', '-f', '-'], { input: script }).catch(explainNftError);
  }

  /** `nft -f -`: one atomic transaction. */
  async apply(script: string): Promise<void> {
    await this.runner.run(['nft', '-f', '-'], { input: script }).catch(explainNftError);
  }

  /** `nft list table` as text (what a rollback feeds back), or undefined when the table does not exist. */
  async listTable(family: string, name: string): Promise<string | undefined> {
    const result = await this.runner.run(['nft', 'list', 'table', family, name], { check: false });
    if (result.exitCode === 0) return result.stdout;
    if (notFound(result.stderr)) return undefined;
    return explainNftError(commandFailedError(['nft', 'list', 'table', family, name], result));
  }

  /** One table as JSON, or undefined when it does not exist. */
  async readTable(family: string, name: string): Promise<NftListing | undefined> {
    const result = await this.runner.run(['nft', '-j', 'list', 'table', family, name], { check: false });
    if (result.exitCode === 0) return parseNftListing(result.stdout);
    if (notFound(result.stderr)) return undefined;
    return explainNftError(commandFailedError(['nft', '-j', 'list', 'table', family, name], result));
  }

  /** The whole ruleset as JSON (every table, ours and others'). */
  async listRuleset(): Promise<NftListing> {
    const result = await this.runner.run(['nft', '-j', 'list', 'ruleset']).catch(explainNftError);
    return parseNftListing(result.stdout);
  }
}

/** The comment line of a table listed as text (`comment "..."` right under `table ... {`). */
export function tableComment(listing: string): string | undefined {
  const lines = listing.split('\n');
  const start = lines.findIndex((l) => /^table \S+ \S+ \{/.test(l));
  const match = /^\s+comment "(.*)"\s*$/.exec(lines[start + 1] ?? '');
  return match?.[1];
}

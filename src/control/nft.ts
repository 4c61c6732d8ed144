/**
 * Driving the `nft` binary: check a script, apply it in one transaction, read state back as JSON.
 * Only this file knows how nft reports its errors.
 */
import { TproxyError, isTproxyError } from '../core/errors.js';
import type { CommandRunner } from '../sys/exec.js';

/** The subset of `nft -j` output we read (libnftables-json(5)). */
export interface NftJsonCounter {
  readonly packets: number;
  readonly bytes: number;
}
export interface NftJsonRule {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly handle: number;
  readonly comment?: string;
  readonly expr: readonly Record<string, unknown>[];
}
export interface NftJsonTable {
  readonly family: string;
  readonly name: string;
  readonly handle: number;
  readonly comment?: string;
}

export interface NftTableState {
  readonly table: NftJsonTable;
  readonly rules: readonly NftJsonRule[];
}

function explainNftError(error: unknown): never {
  if (isTproxyError(error, 'ERR_COMMAND_FAILED')) {
    const stderr = String(error.details.stderr ?? '');
    if (/Operation not permitted/i.test(stderr)) {
      throw new TproxyError('ERR_PRIVILEGE', 'nft needs CAP_NET_ADMIN: run as root or grant the capability', error.details, { cause: error });
    }
    if (/No such file or directory|Could not process rule/i.test(stderr) && /tproxy|socket/i.test(stderr)) {
      throw new TproxyError(
        'ERR_KERNEL_FEATURE',
        `the kernel rejected a tproxy/socket expression: load the modules (modprobe nft_tproxy nft_socket) or use a kernel with CONFIG_NFT_TPROXY and CONFIG_NFT_SOCKET. nft said: ${stderr.split('\n')[0] ?? ''}`,
        error.details,
        { cause: error },
      );
    }
  }
  throw error;
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

  /** Our table and its rules, or undefined when the table does not exist. */
  async readTable(family: string, name: string): Promise<NftTableState | undefined> {
    const result = await this.runner.run(['nft', '-j', 'list', 'table', family, name], { check: false });
    if (result.exitCode !== 0) {
      if (/No such file or directory/.test(result.stderr)) return undefined;
      explainNftError(new TproxyError('ERR_COMMAND_FAILED', `\`nft -j list table ${family} ${name}\` exited with ${result.exitCode}: ${result.stderr.trim()}`, { stderr: result.stderr, exitCode: result.exitCode }));
    }
    const parsed = JSON.parse(result.stdout) as { nftables?: Record<string, unknown>[] };
    let table: NftJsonTable | undefined;
    const rules: NftJsonRule[] = [];
    for (const item of parsed.nftables ?? []) {
      if (item.table) table = item.table as NftJsonTable;
      if (item.rule) rules.push(item.rule as NftJsonRule);
    }
    return table ? { table, rules } : undefined;
  }

  /** Delete our table if it exists; true when something was removed. */
  async deleteTable(family: string, name: string): Promise<boolean> {
    const result = await this.runner.run(['nft', 'delete', 'table', family, name], { check: false });
    if (result.exitCode === 0) return true;
    if (/No such file or directory/.test(result.stderr)) return false;
    return explainNftError(new TproxyError('ERR_COMMAND_FAILED', `\`nft delete table ${family} ${name}\` exited with ${result.exitCode}: ${result.stderr.trim()}`, { stderr: result.stderr, exitCode: result.exitCode }));
  }
}

/** The counter of a rule from `nft -j` output, if it has one. */
export function ruleCounter(rule: NftJsonRule): NftJsonCounter | undefined {
  for (const expr of rule.expr) {
    const counter = expr.counter as NftJsonCounter | undefined;
    if (counter && typeof counter.packets === 'number') return counter;
  }
  return undefined;
}

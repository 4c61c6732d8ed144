/**
 * A rules backend writes the planned table/chains with one tool family (nftables, or iptables of a
 * flavour) and reads our part back. The controller drives policy routing and the order of steps;
 * a backend only knows its own tool.
 */
import { TproxyError } from '../core/errors.js';
import type { MarkUsage } from '../core/rules/mark-usage.js';
import type { RulesRecord } from '../core/rules/record.js';
import type { RulesPlan } from '../core/rules/planned.js';
import type { StatusReport } from '../core/rules/status.js';
import { hostInstallCommand, missingCommandError } from '../sys/exec.js';

export type BackendName = 'nft' | 'iptables' | 'iptables-legacy' | 'iptables-nft';
export type BackendChoice = BackendName | 'auto';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'nft', 'iptables', 'iptables-legacy', 'iptables-nft'];

/** A command and its stdin, as `tproxy rules plan` shows it. */
export interface BackendCommand {
  readonly argv: readonly string[];
  readonly input: string;
}

/** Our part of the live ruleset, as a backend read it. */
export interface OwnedRules {
  /** Something of ours (table, chains, jump rules) exists. */
  readonly exists: boolean;
  /** What the live rules say about themselves. */
  readonly record?: RulesRecord;
  /** Set when an object with our name exists that we did not create: why it is not ours. */
  readonly foreign?: string;
}

export interface RulesBackend<S extends OwnedRules = OwnedRules> {
  readonly name: BackendName;
  /** What apply writes on a host without our rules. */
  render(plan: RulesPlan): BackendCommand[];
  /** Validate the plan with the tool and the kernel, changing nothing. */
  check(plan: RulesPlan): Promise<void>;
  read(plan: RulesPlan): Promise<S>;
  /** Replace our part with the plan, atomically per tool transaction. */
  install(plan: RulesPlan, before: S): Promise<void>;
  /** Put our part back exactly as `before` (removing it when it did not exist). */
  restore(plan: RulesPlan, before: S): Promise<void>;
  /** Remove our part; true when something was removed. */
  remove(plan: RulesPlan, before: S): Promise<boolean>;
  status(plan: RulesPlan, live: S): StatusReport;
  /** How rules outside ours use packet marks. */
  markUsage(plan: RulesPlan): Promise<MarkUsage[]>;
}

/** The binary a backend needs (checked before use). */
function backendBinary(name: BackendName): string {
  return name === 'nft' ? 'nft' : name === 'iptables' ? 'iptables-restore' : `${name}-restore`;
}

/**
 * `auto`: nftables when `nft` is installed, else iptables-restore. An explicit choice must have its
 * binary. `has` says whether an executable exists.
 */
export function chooseBackend(choice: BackendChoice, has: (binary: string) => boolean): BackendName {
  if (choice === 'auto') {
    if (has('nft')) return 'nft';
    if (has('iptables-restore')) return 'iptables';
    throw new TproxyError('ERR_COMMAND_MISSING', `neither \`nft\` nor \`iptables-restore\` was found on PATH: install one, e.g. nftables: ${hostInstallCommand(['nft']) ?? ''}`, { call: 'nft' });
  }
  const binary = backendBinary(choice);
  if (!has(binary)) throw missingCommandError(binary, `needed by --backend ${choice}`);
  return choice;
}

/**
 * An in-memory host for controller tests: answers the nft and ip commands the controller runs,
 * keeps the state they change (our table, ip rules, routes), and records every call. The nft side
 * knows a list of candidate plans: a script that installs one of them (or feeds back its listing,
 * as a rollback does) makes it the live table, listed the way nft would.
 */
import type { IpRouteJson, IpRuleJson } from '../../src/core/rules/ip-json.js';
import { expectedExpressions } from '../../src/core/rules/nft-expected.js';
import { ownedBy } from '../../src/core/rules/plan.js';
import { distinctRoutes, ipRuleArgs } from '../../src/core/rules/policy-routing.js';
import { renderNftTable } from '../../src/core/rules/render-nft.js';
import type { RulesPlan } from '../../src/core/rules/planned.js';
import { commandFailedError, type CommandResult, type CommandRunner, type RunOptions } from '../../src/sys/exec.js';

const NOT_FOUND = { exitCode: 1, stdout: '', stderr: 'Error: No such file or directory\n' };
const DEFAULT_RULES: IpRuleJson[] = [{ priority: 0, src: 'all', table: '255' }, { priority: 32766, src: 'all', table: '254' }, { priority: 32767, src: 'all', table: '253' }];

/** What nft -j would list after `plan` was applied. */
export function nftJsonOf(plan: RulesPlan): unknown[] {
  const { family, name } = plan.table;
  const items: unknown[] = [{ table: { family, name, handle: 1 } }];
  for (const set of plan.table.sets) {
    items.push({ set: { family, table: name, name: set.name, type: set.family === 4 ? 'ipv4_addr' : 'ipv6_addr', flags: ['interval'], ...(set.elements.length ? { elem: set.elements.map((e) => ({ prefix: { addr: e.address, len: e.length } })) } : {}) } });
  }
  let handle = 10;
  for (const chain of plan.table.chains) {
    items.push({ chain: { family, table: name, name: chain.name, handle: handle++, type: chain.type, hook: chain.hook, prio: -150, policy: chain.policy } });
    for (const rule of chain.rules) {
      items.push({ rule: { family, table: name, chain: chain.name, handle: handle++, comment: rule.comment, expr: expectedExpressions(rule).map((e) => ('counter' in e ? { counter: { packets: 0, bytes: 0 } } : e)) } });
    }
  }
  return items;
}

function hex(text: string | undefined): string {
  return `0x${Number(text ?? '0').toString(16)}`;
}

/** `ip -4 rule add fwmark 0x00000001/0x00000001 lookup 100 priority 9000` as `ip -N -j` lists it. */
function ruleOf(argv: readonly string[]): IpRuleJson {
  const at = (key: string): string | undefined => argv[argv.indexOf(key) + 1];
  const from = argv.includes('from') ? at('from') : undefined;
  if (from !== undefined) {
    // The mmproxy loopback rule, as `ip -N -j rule show` prints it (srclen only when not a full-length prefix).
    const [src, len] = from.split('/');
    const full = src!.includes(':') ? 128 : 32;
    return { priority: Number(at('priority')), src: src!, ...(len !== undefined && Number(len) !== full ? { srclen: Number(len) } : {}), iif: at('iif') ?? '', table: at('lookup') ?? '' };
  }
  const [mark, mask] = (at('fwmark') ?? '').split('/');
  return { priority: Number(at('priority')), src: 'all', fwmark: hex(mark), ...(mask && Number(mask) !== 0xffffffff ? { fwmask: hex(mask) } : {}), table: at('lookup') ?? '' };
}

function routeOf(argv: readonly string[]): IpRouteJson {
  return { type: '2', dst: 'default', dev: 'lo', table: argv[argv.indexOf('table') + 1] ?? '' };
}

export interface FakeHostOptions {
  /** Plans the nft side recognizes; the first is the one `applied` puts in place. */
  readonly plans: readonly RulesPlan[];
  readonly applied?: boolean;
  /** The owner recorded in an already applied table. */
  readonly owner?: number;
  /** Commands (argv prefix) that fail once (the first time they run), with their stderr. */
  readonly failures?: readonly [string, string][];
  /** Other ip rules / routes on the host (IPv4). */
  readonly foreignRules?: readonly IpRuleJson[];
  readonly foreignRoutes?: readonly IpRouteJson[];
  /** A table with our name that we did not create. */
  readonly foreignTable?: boolean;
}

export class FakeHost implements CommandRunner {
  readonly calls: { argv: string[]; input?: string }[] = [];
  /** The live table: one of the plans (with its owner), a foreign one, or none. */
  table: RulesPlan | 'foreign' | undefined;
  readonly rules: Record<4 | 6, IpRuleJson[]> = { 4: [], 6: [] };
  readonly routes: Record<4 | 6, IpRouteJson[]> = { 4: [], 6: [] };
  private readonly failed = new Set<number>();

  constructor(private readonly options: FakeHostOptions) {
    const first = options.plans[0];
    if (options.foreignTable) this.table = 'foreign';
    if (options.applied && first) {
      this.table = options.owner !== undefined ? ownedBy(first, options.owner) : first;
      for (const r of first.policyRoutes) this.rules[r.family].push(ruleOf(['ip', ...ipRuleArgs(r, 'add')]));
      for (const r of distinctRoutes(first.policyRoutes)) this.routes[r.family].push({ type: '2', dst: 'default', dev: 'lo', table: `${r.route.table}` });
    }
    this.rules[4].push(...(options.foreignRules ?? []));
    this.routes[4].push(...(options.foreignRoutes ?? []));
  }

  lines(): string[] {
    return this.calls.map((c) => c.argv.join(' '));
  }

  /** The table a script leaves: a known plan (installed or restored from its listing), or none. */
  private afterScript(input: string): RulesPlan | 'foreign' | undefined {
    const owner = /owner=(\d+)/.exec(input)?.[1];
    for (const plan of this.options.plans) {
      const candidate = owner !== undefined ? ownedBy(plan, Number(owner)) : plan;
      if (input.includes(renderNftTable(candidate))) return candidate;
    }
    if (input.includes('delete table')) return undefined;
    return this.table;
  }

  private answer(argv: readonly string[], input: string | undefined): Partial<CommandResult> {
    const line = argv.join(' ');
    const failure = this.options.failures?.findIndex(([prefix], i) => line.startsWith(prefix) && !this.failed.has(i)) ?? -1;
    if (failure >= 0) {
      this.failed.add(failure);
      return { exitCode: 1, stderr: this.options.failures?.[failure]?.[1] ?? '' };
    }
    const { family, name } = this.options.plans[0]!.table;
    const f = (argv.includes('-6') ? 6 : 4);
    if (line === 'nft --check -f -') return {};
    if (line === 'nft -f -') {
      this.table = this.afterScript(input ?? '');
      return {};
    }
    if (line === `nft list table ${family} ${name}`) {
      if (this.table === 'foreign') return { stdout: `table ${family} ${name} {\n\tcomment "somebody else's"\n}\n` };
      return this.table ? { stdout: renderNftTable(this.table) } : NOT_FOUND;
    }
    if (line === `nft -j list table ${family} ${name}`) return this.table && this.table !== 'foreign' ? { stdout: JSON.stringify({ nftables: nftJsonOf(this.table) }) } : this.table ? { stdout: '{"nftables":[]}' } : NOT_FOUND;
    if (line === 'nft -j list ruleset') return { stdout: JSON.stringify({ nftables: this.table && this.table !== 'foreign' ? nftJsonOf(this.table) : [] }) };
    if (line === `ip -N -j -${f} rule show`) return { stdout: JSON.stringify([...DEFAULT_RULES, ...this.rules[f]].sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0))) };
    if (line === `ip -N -j -${f} route show table all`) return { stdout: JSON.stringify(this.routes[f]) };
    const list = argv[2] === 'rule' ? this.rules[f] : argv[2] === 'route' ? this.routes[f] : undefined;
    if (list && (argv[3] === 'add' || argv[3] === 'del')) {
      const entry = argv[2] === 'rule' ? ruleOf(argv) : routeOf(argv);
      const index = list.findIndex((e) => JSON.stringify(e) === JSON.stringify(entry));
      if (argv[3] === 'add') {
        if (argv[2] === 'route' && index >= 0) return { exitCode: 2, stderr: 'RTNETLINK answers: File exists' };
        list.push(entry);
      } else {
        if (index < 0) return { exitCode: 2, stderr: 'RTNETLINK answers: No such file or directory' };
        list.splice(index, 1);
      }
      return {};
    }
    return { exitCode: 127, stderr: `fake host: unexpected command ${line}` };
  }

  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    this.calls.push({ argv: [...argv], ...(options.input !== undefined ? { input: options.input } : {}) });
    const answer = this.answer(argv, options.input);
    const result = { stdout: answer.stdout ?? '', stderr: answer.stderr ?? '', exitCode: answer.exitCode ?? 0 };
    if (result.exitCode !== 0 && options.check !== false) return Promise.reject(commandFailedError(argv, result));
    return Promise.resolve(result);
  }
}

/**
 * Applying, checking and removing a rules plan: the backend's table/chains plus policy routing.
 *
 * apply:   check with the tool and kernel -> read our live part -> refuse what is not ours, rules
 *          owned by a running `tproxy run`, and collisions with the host -> nothing to do when all
 *          is in place -> add missing routes and rules (harmless alone: only our mark selects
 *          them) -> replace our table/chains in one transaction (the commit point) -> remove
 *          policy routing an earlier apply recorded that the plan no longer has -> read back.
 *          Any failure undoes the steps done so far, in reverse: the host is as it was.
 * remove:  our table/chains first (nothing is marked any more), then every policy rule and route
 *          that is ours now or by the record; succeeds when nothing is there.
 */
import { TproxyError, isTproxyError, type TproxyErrorCode } from '../core/errors.js';
import type { Family } from '../core/net/constants.js';
import { findCollisions } from '../core/rules/collisions.js';
import { isPolicyRoute, isPolicyRule, type PolicyRoutingState } from '../core/rules/ip-json.js';
import { ownedBy } from '../core/rules/plan.js';
import { distinctRoutes } from '../core/rules/policy-routing.js';
import { encodeRecord, recordedPolicyRoutes, type RulesRecord } from '../core/rules/record.js';
import type { PolicyRoute, RulesPlan } from '../core/rules/planned.js';
import { allInPlace, policyRoutingStatus, type PieceStatus } from '../core/rules/status.js';
import type { CommandRunner } from '../sys/exec.js';
import { isProcessAlive } from '../sys/process.js';
import type { BackendName, OwnedRules, RulesBackend } from './backend.js';
import { IpRoute } from './iproute.js';
import { IptablesBackend } from './iptables-backend.js';
import { NftBackend } from './nft-backend.js';

export interface ControllerOptions {
  readonly backend?: BackendName;
  /** Whether a process exists (for the owner recorded with the rules). */
  readonly isProcessAlive?: (pid: number) => boolean;
}

export interface ApplyOptions {
  /** pid of the `tproxy run` that owns the rules and removes them when it stops. */
  readonly owner?: number;
}

export interface ApplyResult {
  /** False when everything was already in place (nothing was touched, counters kept). */
  readonly changed: boolean;
  /** Rules of an earlier run that were replaced, and whether its process was gone (stale state). */
  readonly replaced?: { readonly owner?: number; readonly stale: boolean };
  /** Things that may interfere but are not clear conflicts. */
  readonly warnings: readonly string[];
}

export interface RemoveResult {
  /** Our table (nft) or chains (iptables) were there and are removed. */
  readonly table: boolean;
  readonly rules: number;
  readonly routes: number;
  /** The owner recorded with the removed rules, and whether it was still running. */
  readonly owner?: { readonly pid: number; readonly running: boolean };
}

export interface RulesStatus {
  readonly backend: BackendName;
  readonly record?: RulesRecord;
  readonly owner?: { readonly pid: number; readonly running: boolean };
  readonly pieces: readonly PieceStatus[];
  readonly unexpected: readonly string[];
  /** Everything planned is live as planned, and nothing else is in our table or chains. */
  readonly inPlace: boolean;
}

export function createBackend(name: BackendName, runner: CommandRunner): RulesBackend {
  switch (name) {
    case 'nft':
      return new NftBackend(runner);
    case 'iptables':
      return new IptablesBackend(runner, 'system');
    case 'iptables-legacy':
      return new IptablesBackend(runner, 'legacy');
    case 'iptables-nft':
      return new IptablesBackend(runner, 'nft');
  }
}

function unique(routes: readonly PolicyRoute[]): PolicyRoute[] {
  const seen = new Set<string>();
  return routes.filter((r) => {
    const key = JSON.stringify(r);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function familiesOf(routes: readonly PolicyRoute[]): Family[] {
  return [...new Set(routes.map((r) => r.family))];
}

export class RulesController {
  readonly backend: RulesBackend;
  readonly ip: IpRoute;
  private readonly isAlive: (pid: number) => boolean;

  constructor(runner: CommandRunner, options: ControllerOptions = {}) {
    this.backend = createBackend(options.backend ?? 'nft', runner);
    this.ip = new IpRoute(runner);
    this.isAlive = options.isProcessAlive ?? isProcessAlive;
  }

  private refuseForeign(owned: OwnedRules): void {
    if (owned.foreign) throw new TproxyError('ERR_CONFLICT', owned.foreign, { backend: this.backend.name });
  }

  async apply(basePlan: RulesPlan, options: ApplyOptions = {}): Promise<ApplyResult> {
    const plan = options.owner !== undefined ? ownedBy(basePlan, options.owner) : basePlan;
    await this.backend.check(plan);
    const before = await this.backend.read(plan);
    this.refuseForeign(before);
    const previousOwner = before.record?.owner;
    if (previousOwner !== undefined && previousOwner !== options.owner && this.isAlive(previousOwner)) {
      throw new TproxyError(
        'ERR_CONFLICT',
        `the rules of ${this.describe(plan)} belong to a running tproxy (pid ${previousOwner}), which removes them when it stops: stop it first, or use another --table, --route-table and --rule-priority for a second instance`,
        { owner: previousOwner },
      );
    }
    const recorded = before.record ? recordedPolicyRoutes(before.record) : [];
    const own = unique([...plan.policyRoutes, ...recorded]);
    const routing = await this.ip.read(familiesOf(own));
    const collisions = findCollisions(plan, { routing, marks: await this.backend.markUsage(plan) }, own);
    if (collisions.conflicts.length > 0) {
      throw new TproxyError('ERR_CONFLICT', `refusing to apply: ${collisions.conflicts.join('; ')}`, { conflicts: collisions.conflicts, warnings: collisions.warnings });
    }
    const replaced = before.record ? { replaced: { ...(previousOwner !== undefined ? { owner: previousOwner } : {}), stale: previousOwner !== undefined && previousOwner !== options.owner } } : {};

    const stale = recorded.filter((old) => !plan.policyRoutes.some((r) => JSON.stringify(r) === JSON.stringify(old)));
    const current = [this.backend.status(plan, before), policyRoutingStatus(plan, routing)];
    if (allInPlace(current) && stale.length === 0 && before.record !== undefined && encodeRecord(before.record) === encodeRecord(plan.record)) {
      return { changed: false, warnings: collisions.warnings };
    }

    const undo: { what: string; run: () => Promise<void> }[] = [];
    try {
      for (const route of distinctRoutes(plan.policyRoutes)) {
        if (routing.routes[route.family].some((r) => isPolicyRoute(r, route))) continue;
        await this.ip.addRoute(route);
        undo.push({ what: `ip -${route.family} route del local default table ${route.route.table}`, run: () => this.ip.deleteRoute(route) });
      }
      for (const route of plan.policyRoutes) {
        const copies = routing.rules[route.family].filter((r) => isPolicyRule(r, route)).length;
        if (copies === 0) {
          await this.ip.addRule(route);
          undo.push({ what: `ip -${route.family} rule del priority ${route.rule.priority}`, run: () => this.ip.deleteRule(route) });
        }
        for (let extra = 1; extra < copies && extra < 16; extra++) {
          await this.ip.deleteRule(route);
          undo.push({ what: `ip -${route.family} rule add priority ${route.rule.priority}`, run: () => this.ip.addRule(route) });
        }
      }
      // Registered first: an install of several transactions (iptables: one per family) can fail halfway.
      undo.push({ what: `${this.backend.name}: restore ${this.describe(plan)}`, run: () => this.backend.restore(plan, before) });
      await this.backend.install(plan, before);
      const routesGone = new Set<string>();
      for (const old of stale) {
        const found = { rules: routing.rules[old.family].filter((r) => isPolicyRule(r, old)).length, route: routing.routes[old.family].some((r) => isPolicyRoute(r, old)) };
        for (let i = 0; i < found.rules && i < 16; i++) {
          await this.ip.deleteRule(old);
          undo.push({ what: `ip -${old.family} rule add priority ${old.rule.priority}`, run: () => this.ip.addRule(old) });
        }
        const stillUsed = plan.policyRoutes.some((r) => r.family === old.family && r.route.table === old.route.table);
        // Several stale rules (fwmark and loopback) may share one route: it goes once.
        const key = `${old.family}/${old.route.table}`;
        if (found.route && !stillUsed && !routesGone.has(key)) {
          routesGone.add(key);
          await this.ip.deleteRoute(old);
          undo.push({ what: `ip -${old.family} route add local default table ${old.route.table}`, run: () => this.ip.addRoute(old) });
        }
      }
      await this.verify(plan);
    } catch (error) {
      const failures: string[] = [];
      for (const step of undo.reverse()) {
        await step.run().catch((e: unknown) => failures.push(`${step.what}: ${(e as Error).message}`));
      }
      const code: TproxyErrorCode = isTproxyError(error) ? error.code : 'ERR_COMMAND_FAILED';
      const message = (error as Error).message;
      const outcome = failures.length === 0 ? 'rolled back: the host is as before' : `ROLLBACK INCOMPLETE (${failures.join('; ')}): run tproxy rules cleanup`;
      throw new TproxyError(code, `${message} (${outcome})`, { ...(isTproxyError(error) ? error.details : {}), rolledBack: failures.length === 0, rollbackFailures: failures }, { cause: error });
    }
    return { changed: true, ...replaced, warnings: collisions.warnings };
  }

  /** Everything planned must be there after an apply (drift in form is for status to report). */
  private async verify(plan: RulesPlan): Promise<void> {
    const status = await this.status(plan);
    const missing = status.pieces.filter((p) => p.state === 'missing');
    if (missing.length > 0) throw new TproxyError('ERR_COMMAND_FAILED', `after applying, these are missing: ${missing.map((p) => p.name).join(', ')}`, { missing: missing.map((p) => p.name) });
  }

  async remove(plan: RulesPlan): Promise<RemoveResult> {
    const before = await this.backend.read(plan);
    this.refuseForeign(before);
    const table = await this.backend.remove(plan, before);
    const routes = unique([...plan.policyRoutes, ...(before.record ? recordedPolicyRoutes(before.record) : [])]);
    const routing = await this.ip.read(familiesOf(routes));
    let rules = 0;
    let removedRoutes = 0;
    for (const route of routes) {
      const copies = routing.rules[route.family].filter((r) => isPolicyRule(r, route)).length;
      for (let i = 0; i < copies && i < 16; i++, rules++) await this.ip.deleteRule(route);
    }
    const done = new Set<string>();
    for (const route of routes) {
      const key = `${route.family}/${route.route.table}`;
      if (done.has(key) || !routing.routes[route.family].some((r) => isPolicyRoute(r, route))) continue;
      done.add(key);
      await this.ip.deleteRoute(route);
      removedRoutes++;
    }
    const pid = before.record?.owner;
    return { table, rules, routes: removedRoutes, ...(pid !== undefined ? { owner: { pid, running: this.isAlive(pid) } } : {}) };
  }

  async status(plan: RulesPlan): Promise<RulesStatus> {
    const live = await this.backend.read(plan);
    const routing: PolicyRoutingState = await this.ip.read(plan.config.families);
    const reports = [this.backend.status(plan, live), policyRoutingStatus(plan, routing)];
    const pid = live.record?.owner;
    return {
      backend: this.backend.name,
      ...(live.record ? { record: live.record } : {}),
      ...(pid !== undefined ? { owner: { pid, running: this.isAlive(pid) } } : {}),
      pieces: reports.flatMap((r) => r.pieces),
      unexpected: [...reports.flatMap((r) => r.unexpected), ...(live.foreign ? [live.foreign] : [])],
      inPlace: allInPlace(reports) && !live.foreign,
    };
  }

  private describe(plan: RulesPlan): string {
    return this.backend.name === 'nft' ? `table ${plan.table.family} ${plan.table.name}` : `the ${plan.config.tableName.toUpperCase()}_* chains`;
  }
}

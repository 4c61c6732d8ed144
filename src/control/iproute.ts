/**
 * Driving the `ip` binary for policy routing: the fwmark rule and the local route table, read back
 * with `ip -N -j` (numeric, so table names in rt_tables do not matter). Only this file reads ip's stderr.
 */
import { TproxyError, isTproxyError } from '../core/errors.js';
import type { Family } from '../core/net/constants.js';
import type { IpRouteJson, IpRuleJson, PolicyRoutingState } from '../core/rules/ip-json.js';
import { ipRouteArgs, ipRuleArgs } from '../core/rules/policy-routing.js';
import type { PolicyRoute } from '../core/rules/planned.js';
import type { CommandRunner } from '../sys/exec.js';

/** Turn a failed ip run into the error a user can act on. */
export function explainIpError(error: unknown): never {
  if (isTproxyError(error, 'ERR_COMMAND_FAILED')) {
    const stderr = String(error.details.stderr ?? '');
    if (/Operation not permitted/i.test(stderr)) {
      throw new TproxyError('ERR_PRIVILEGE', 'ip needs CAP_NET_ADMIN to change policy routing: run as root (or grant the capability)', error.details, { cause: error });
    }
    if (/Address family not supported/i.test(stderr)) {
      throw new TproxyError('ERR_KERNEL_FEATURE', 'IPv6 is disabled on this host (ipv6.disable=1 or a kernel without CONFIG_IPV6): use --family 4', error.details, { cause: error });
    }
    if (/Nexthop device is not up|Network is down/i.test(stderr)) {
      throw new TproxyError('ERR_COMMAND_FAILED', `the local route needs the loopback interface up: ip link set lo up. ip said: ${stderr.split('\n')[0] ?? ''}`, error.details, { cause: error });
    }
    if (/Operation not supported/i.test(stderr)) {
      throw new TproxyError('ERR_KERNEL_FEATURE', `the kernel has no policy routing for this family: it needs CONFIG_IP_MULTIPLE_TABLES (IPv4) and CONFIG_IPV6_MULTIPLE_TABLES (IPv6). ip said: ${stderr.split('\n')[0] ?? ''}`, error.details, { cause: error });
    }
  }
  throw error;
}

function parse<T>(stdout: string): T[] {
  const text = stdout.trim();
  return text === '' ? [] : (JSON.parse(text) as T[]);
}

export class IpRoute {
  constructor(private readonly runner: CommandRunner) {}

  async rules(family: Family): Promise<IpRuleJson[]> {
    const result = await this.runner.run(['ip', '-N', '-j', `-${family}`, 'rule', 'show']).catch(explainIpError);
    return parse<IpRuleJson>(result.stdout);
  }

  /** Routes of every table of one family. */
  async routes(family: Family): Promise<IpRouteJson[]> {
    const result = await this.runner.run(['ip', '-N', '-j', `-${family}`, 'route', 'show', 'table', 'all']).catch(explainIpError);
    return parse<IpRouteJson>(result.stdout);
  }

  /** Rules and routes of the given families (the others read as empty). */
  async read(families: readonly Family[]): Promise<PolicyRoutingState> {
    const rules: Record<Family, IpRuleJson[]> = { 4: [], 6: [] };
    const routes: Record<Family, IpRouteJson[]> = { 4: [], 6: [] };
    for (const family of families) {
      rules[family] = await this.rules(family);
      routes[family] = await this.routes(family);
    }
    return { rules, routes };
  }

  async addRoute(route: PolicyRoute): Promise<void> {
    await this.runner.run(['ip', ...ipRouteArgs(route, 'add')]).catch(explainIpError);
  }

  async deleteRoute(route: PolicyRoute): Promise<void> {
    await this.runner.run(['ip', ...ipRouteArgs(route, 'del')]).catch(explainIpError);
  }

  async addRule(route: PolicyRoute): Promise<void> {
    await this.runner.run(['ip', ...ipRuleArgs(route, 'add')]).catch(explainIpError);
  }

  async deleteRule(route: PolicyRoute): Promise<void> {
    await this.runner.run(['ip', ...ipRuleArgs(route, 'del')]).catch(explainIpError);
  }
}

/**
 * Reading a host's state for the model through the command runner (so it works inside a network
 * namespace with NetnsRunner): nft, iptables-save, ip rule / route / addr, ss with IP_TRANSPARENT
 * (sock_diag's INET_DIAG_SOCKOPT, shown by `ss --inet-sockopt`), and the forwarding sysctls.
 * A source that cannot be read is recorded in `errors`; the snapshot is still made.
 */
import { TproxyError } from '../core/errors.js';
import { SNAPSHOT_FORMAT, type Snapshot } from '../core/model/snapshot.js';
import type { CommandRunner } from './exec.js';

const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter', 'net.ipv4.conf.all.src_valid_mark', 'net.ipv4.conf.all.route_localnet', 'net.ipv4.ip_nonlocal_bind', 'net.ipv4.ip_early_demux', 'net.ipv4.tcp_early_demux', 'net.ipv6.ip_nonlocal_bind'];

export interface SnapshotOptions {
  readonly now?: () => Date;
}

export async function takeSnapshot(runner: CommandRunner, options: SnapshotOptions = {}): Promise<Snapshot> {
  const errors: Record<string, string> = {};
  const text = async (key: string, argv: string[]): Promise<string | undefined> => {
    try {
      const r = await runner.run(argv, { check: false, timeoutMs: 20_000 });
      if (r.exitCode !== 0) {
        errors[key] = `\`${argv.join(' ')}\` exited with ${r.exitCode}: ${r.stderr.trim().split('\n')[0] ?? ''}`;
        return undefined;
      }
      return r.stdout;
    } catch (error) {
      errors[key] = error instanceof TproxyError ? error.message : String(error);
      return undefined;
    }
  };
  const json = async (key: string, argv: string[]): Promise<unknown> => {
    const out = await text(key, argv);
    if (out === undefined) return null;
    if (out.trim() === '') return [];
    try {
      return JSON.parse(out) as unknown;
    } catch (error) {
      errors[key] = `\`${argv.join(' ')}\` printed invalid JSON: ${(error as Error).message}`;
      return null;
    }
  };
  const [nft, rules4, rules6, routes4, routes6, addresses, sockets, ipt4, ipt6] = await Promise.all([
    json('nft', ['nft', '-j', 'list', 'ruleset']),
    json('ipRules.ipv4', ['ip', '-j', '-4', 'rule', 'show']),
    json('ipRules.ipv6', ['ip', '-j', '-6', 'rule', 'show']),
    json('routes.ipv4', ['ip', '-j', '-4', 'route', 'show', 'table', 'all']),
    json('routes.ipv6', ['ip', '-j', '-6', 'route', 'show', 'table', 'all']),
    json('addresses', ['ip', '-j', 'addr', 'show']),
    text('sockets', ['ss', '-H', '-O', '-t', '-u', '-a', '-n', '-p', '-e', '--inet-sockopt']),
    text('iptables.ipv4', ['iptables-save', '-c', '-t', 'mangle']),
    text('iptables.ipv6', ['ip6tables-save', '-c', '-t', 'mangle']),
  ]);
  const sysctls: Record<string, string> = {};
  const sysctlOut = await text('sysctls', ['sysctl', '-e', ...SYSCTLS]);
  for (const line of (sysctlOut ?? '').split('\n')) {
    const m = /^([\w.-]+)\s*=\s*(.*)$/.exec(line.trim());
    if (m) sysctls[m[1]!] = m[2]!;
  }
  // A missing iptables is normal on nftables-only hosts.
  for (const key of ['iptables.ipv4', 'iptables.ipv6']) if (errors[key]?.includes('not found')) delete errors[key];
  return {
    format: SNAPSHOT_FORMAT,
    version: 1,
    takenAt: (options.now?.() ?? new Date()).toISOString(),
    nft,
    iptables: { ...(ipt4 ? { ipv4: ipt4 } : {}), ...(ipt6 ? { ipv6: ipt6 } : {}) },
    ipRules: { ipv4: rules4, ipv6: rules6 },
    routes: { ipv4: routes4, ipv6: routes6 },
    addresses,
    sockets: sockets ?? '',
    sysctls,
    errors,
  };
}

/**
 * Reading a host's state for the model through the command runner (so it works inside a network
 * namespace with NetnsRunner): nft, iptables-save, ip rule / route / addr, ss with IP_TRANSPARENT
 * (sock_diag's INET_DIAG_SOCKOPT, shown by `ss --inet-sockopt`), and the forwarding sysctls.
 * A source that cannot be read is recorded in `errors`; the snapshot is still made.
 */
import { TproxyError } from '../core/errors.js';
import { KERNEL_PROBES } from '../core/doctor/kernel-probes.js';
import { hostIoUringSupport } from './io-uring.js';
import { SNAPSHOT_FORMAT, type HostFacts, type Snapshot } from '../core/model/snapshot.js';
import type { CommandRunner } from './exec.js';

const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter', 'net.ipv4.conf.all.src_valid_mark', 'net.ipv4.conf.all.route_localnet', 'net.ipv4.ip_nonlocal_bind', 'net.ipv4.ip_early_demux', 'net.ipv4.tcp_early_demux', 'net.ipv6.ip_nonlocal_bind'];

/** Per-interface settings that change what happens to intercepted packets (and bridge hooks, present only with br_netfilter). */
const SYSCTL_PATTERN = '^net\\.(ipv4\\.conf\\.[^.]+\\.(rp_filter|src_valid_mark|accept_local|route_localnet|forwarding)|ipv6\\.conf\\.[^.]+\\.(forwarding|disable_ipv6)|bridge\\.bridge-nf-call-[a-z0-9]+)$';

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
  // Legacy x_tables exist per network namespace, and reading one creates it: only those listed are read.
  const legacyNames = async (file: string): Promise<boolean> => {
    try {
      const r = await runner.run(['cat', file], { check: false, timeoutMs: 10_000 });
      return r.exitCode === 0 && r.stdout.split('\n').includes('mangle');
    } catch {
      return false;
    }
  };
  const [nft, rules4, rules6, routes4, routes6, addresses, sockets, ipt4, ipt6, legacy4, legacy6, flavour] = await Promise.all([
    json('nft', ['nft', '-j', 'list', 'ruleset']),
    json('ipRules.ipv4', ['ip', '-j', '-4', 'rule', 'show']),
    json('ipRules.ipv6', ['ip', '-j', '-6', 'rule', 'show']),
    json('routes.ipv4', ['ip', '-j', '-4', 'route', 'show', 'table', 'all']),
    json('routes.ipv6', ['ip', '-j', '-6', 'route', 'show', 'table', 'all']),
    json('addresses', ['ip', '-j', 'addr', 'show']),
    text('sockets', ['ss', '-H', '-O', '-t', '-u', '-a', '-n', '-p', '-e', '--inet-sockopt']),
    iptablesSave(text, errors, 'iptables.ipv4', 'iptables'),
    iptablesSave(text, errors, 'iptables.ipv6', 'ip6tables'),
    legacyNames('/proc/net/ip_tables_names').then((has) => (has ? text('iptablesLegacy.ipv4', ['iptables-legacy-save', '-c', '-t', 'mangle']) : undefined)),
    legacyNames('/proc/net/ip6_tables_names').then((has) => (has ? text('iptablesLegacy.ipv6', ['ip6tables-legacy-save', '-c', '-t', 'mangle']) : undefined)),
    runner.run(['iptables', '--version'], { check: false, timeoutMs: 10_000 }).then(
      (r) => (/\(legacy\)/.test(r.stdout) ? ('legacy' as const) : /nf_tables/.test(r.stdout) ? ('nft' as const) : undefined),
      () => undefined,
    ),
  ]);
  const sysctls: Record<string, string> = {};
  const [sysctlOut, perInterface, host] = await Promise.all([
    text('sysctls', ['sysctl', '-e', ...SYSCTLS]),
    text('sysctls.interfaces', ['sysctl', '-e', '-a', '-r', SYSCTL_PATTERN]),
    hostFacts(runner, sockets ?? '', text),
  ]);
  for (const line of `${sysctlOut ?? ''}\n${perInterface ?? ''}`.split('\n')) {
    const m = /^([\w./-]+)\s*=\s*(.*)$/.exec(line.trim());
    if (m) sysctls[m[1]!] = m[2]!;
  }
  // A missing iptables is normal on nftables-only hosts.
  for (const key of ['iptables.ipv4', 'iptables.ipv6', 'iptablesLegacy.ipv4', 'iptablesLegacy.ipv6']) if (/not found|No such file/.test(errors[key] ?? '')) delete errors[key];
  return {
    format: SNAPSHOT_FORMAT,
    version: 1,
    takenAt: (options.now?.() ?? new Date()).toISOString(),
    nft,
    iptables: { ...(ipt4 ? { ipv4: ipt4 } : {}), ...(ipt6 ? { ipv6: ipt6 } : {}) },
    ...(legacy4 || legacy6 ? { iptablesLegacy: { ...(legacy4 ? { ipv4: legacy4 } : {}), ...(legacy6 ? { ipv6: legacy6 } : {}) } } : {}),
    ...(flavour ? { iptablesCommand: flavour } : {}),
    ipRules: { ipv4: rules4, ipv6: rules6 },
    routes: { ipv4: routes4, ipv6: routes6 },
    addresses,
    sockets: sockets ?? '',
    sysctls,
    host,
    errors,
  };
}

type TextSource = (key: string, argv: string[], input?: string) => Promise<string | undefined>;

/**
 * The mangle table as iptables-nft keeps it in nf_tables (`iptables-nft-save`); where that flavour
 * is not installed, `iptables-save`, whichever it is.
 */
async function iptablesSave(text: TextSource, errors: Record<string, string>, key: string, tool: 'iptables' | 'ip6tables'): Promise<string | undefined> {
  const nft = await text(key, [`${tool}-nft-save`, '-c', '-t', 'mangle']);
  if (nft !== undefined || !/not found|No such file/.test(errors[key] ?? '')) return nft;
  delete errors[key];
  return text(key, [`${tool}-save`, '-c', '-t', 'mangle']);
}

/**
 * What doctor needs beyond the model: kernel feature probes (`nft --check` of a table using the
 * expression: validated by the kernel, nothing is created), loaded modules and xtables extensions,
 * and the effective capabilities of this process and of every process that owns a socket.
 */
async function hostFacts(runner: CommandRunner, sockets: string, text: TextSource): Promise<HostFacts> {
  const nftCheck = async (rules: readonly string[]): Promise<{ ok: boolean; detail?: string }> => {
    const chains = rules.map((r, i) => `  chain probe${i} {\n    type filter hook prerouting priority mangle; policy accept;\n    ${r}\n  }\n`).join('');
    try {
      const r = await runner.run(['nft', '--check', '-f', '-'], { check: false, input: `table inet tproxy_doctor_probe {\n${chains}}\n`, timeoutMs: 20_000 });
      return r.exitCode === 0 ? { ok: true } : { ok: false, detail: r.stderr.trim().split('\n')[0] ?? `exit ${r.exitCode}` };
    } catch (error) {
      return { ok: false, detail: error instanceof TproxyError ? error.message : String(error) };
    }
  };
  const probeAll = async (): Promise<[string, { ok: boolean; detail?: string }][]> => {
    // One transaction for all; only when the kernel refuses it, one per feature to say which.
    const all = await nftCheck(KERNEL_PROBES.map((p) => p.rule));
    if (all.ok) return KERNEL_PROBES.map((p) => [p.id, all]);
    return Promise.all(KERNEL_PROBES.map(async (p) => [p.id, await nftCheck([p.rule])] as [string, { ok: boolean; detail?: string }]));
  };
  const pids = [...new Set([...sockets.matchAll(/pid=(\d+)/g)].map((m) => m[1]!))].slice(0, 512);
  const quiet = async (argv: string[]): Promise<string | undefined> => {
    try {
      const r = await runner.run(argv, { check: false, timeoutMs: 20_000 });
      return r.exitCode === 0 || r.stdout !== '' ? r.stdout : undefined;
    } catch {
      return undefined;
    }
  };
  const PROC_FILES = ['/proc/modules', '/proc/net/ip_tables_targets', '/proc/net/ip_tables_matches', '/proc/net/ip6_tables_targets', '/proc/net/ip6_tables_matches'];
  const [probes, procText, self, status, listing] = await Promise.all([
    probeAll(),
    quiet(['grep', '-s', '-H', '', ...PROC_FILES]),
    text('self', ['grep', '-E', '^(Uid|CapEff):', '/proc/self/status']),
    pids.length > 0 ? quiet(['grep', '-s', '-H', '^CapEff:', ...pids.map((p) => `/proc/${p}/status`)]) : Promise.resolve(''),
    // `nft -j` leaves out table comments, where tproxy keeps its record.
    quiet(['nft', 'list', 'ruleset']),
  ]);
  const tableComments: Record<string, string> = {};
  for (const m of (listing ?? '').matchAll(/^table (\S+) (\S+) \{\n\s+comment "(.*)"\s*$/gm)) tableComments[`${m[1]!} ${m[2]!}`] = m[3]!;
  const proc = new Map<string, string[]>();
  for (const line of (procText ?? '').split('\n')) {
    const file = PROC_FILES.find((f) => line.startsWith(`${f}:`));
    if (file) proc.set(file, [...(proc.get(file) ?? []), line.slice(file.length + 1)]);
  }
  const file = (path: string): string | undefined => (procText === undefined ? undefined : (proc.get(path) ?? []).join('\n'));
  const [modules, targets4, matches4, targets6, matches6] = PROC_FILES.map((f) => (f === '/proc/modules' && !proc.has(f) ? undefined : file(f)));
  const processes: Record<string, { capEff: string }> = {};
  for (const m of (status ?? '').matchAll(/^\/proc\/(\d+)\/status:CapEff:\s*([0-9a-f]+)$/gm)) processes[m[1]!] = { capEff: m[2]! };
  const uid = /^Uid:\s*\d+\s+(\d+)/m.exec(self ?? '');
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(self ?? '');
  return {
    probes: Object.fromEntries(probes),
    ...(modules !== undefined ? { modules } : {}),
    xtables: {
      ...(targets4 !== undefined ? { targets4 } : {}),
      ...(matches4 !== undefined ? { matches4 } : {}),
      ...(targets6 !== undefined ? { targets6 } : {}),
      ...(matches6 !== undefined ? { matches6 } : {}),
    },
    ...(uid && capEff ? { self: { uid: Number(uid[1]), capEff: capEff[1]! } } : {}),
    processes,
    tableComments,
    ioUring: hostIoUringSupport(),
  };
}

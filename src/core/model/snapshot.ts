/**
 * A snapshot: the raw outputs of the commands that describe a host (`nft -j list ruleset`,
 * `iptables-save`, `ip -j rule`, `ip -j route`, `ip -j addr`, `ss`, sysctls), saved as they came
 * so a bug report carries the evidence, and turned into the model's World here, purely.
 */
import { TproxyError } from '../errors.js';
import { parseIp } from '../net/address.js';
import { parseIptablesSave } from './iptables-save.js';
import { parseNftJson } from './nft-json.js';
import { parseIpRules, parseRoutes } from './routing.js';
import type { Table } from './ruleset.js';
import { parseSsSockets } from './ss.js';
import { isLocalAddress, type Interface, type World } from './world.js';

export const SNAPSHOT_FORMAT = 'tproxy-snapshot';

export interface Snapshot {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly version: 1;
  readonly takenAt: string;
  /** `nft -j list ruleset`, parsed JSON; null when nft is missing. */
  readonly nft: unknown;
  /** `iptables-nft-save -c -t mangle` / `ip6tables-nft-save ...` text (or `iptables-save` where there is no nft flavour). */
  readonly iptables: { readonly ipv4?: string; readonly ipv6?: string };
  /** `iptables-legacy-save -c -t mangle` / `ip6tables-legacy-save ...`: the legacy x_tables, when this namespace has them. */
  readonly iptablesLegacy?: { readonly ipv4?: string; readonly ipv6?: string };
  /** Which flavour the plain `iptables` command is here (for fix commands). */
  readonly iptablesCommand?: 'nft' | 'legacy';
  readonly ipRules: { readonly ipv4: unknown; readonly ipv6: unknown };
  readonly routes: { readonly ipv4: unknown; readonly ipv6: unknown };
  /** `ip -j addr`. */
  readonly addresses: unknown;
  /** `ss -H -O -tuanpe --inet-sockopt`. */
  readonly sockets: string;
  /** Forwarding sysctls, and per interface: rp_filter, src_valid_mark, accept_local, ... */
  readonly sysctls: Readonly<Record<string, string>>;
  /** Facts for `tproxy doctor` (absent in snapshots of older versions). */
  readonly host?: HostFacts;
  /** What could not be read, by source, with the reason. */
  readonly errors: Readonly<Record<string, string>>;
}

export interface ProbeResult {
  readonly ok: boolean;
  /** The first line of the error when the kernel refused it. */
  readonly detail?: string;
}

export interface HostFacts {
  /** Kernel feature probes by id (KERNEL_PROBES): `nft --check` of a table using the expression. */
  readonly probes?: Readonly<Record<string, ProbeResult>>;
  /** `/proc/modules` (absent when the kernel has no loadable modules). */
  readonly modules?: string;
  /** `/proc/net/ip{,6}_tables_{targets,matches}`: xtables extensions the kernel has loaded. */
  readonly xtables?: { readonly targets4?: string; readonly matches4?: string; readonly targets6?: string; readonly matches6?: string };
  /** The inspecting process: real uid and effective capabilities (hex, as /proc/PID/status shows). */
  readonly self?: { readonly uid: number; readonly capEff: string };
  /** Effective capabilities of each process that owns a socket, by pid. */
  readonly processes?: Readonly<Record<string, { readonly capEff: string }>>;
  /** nftables table comments by `family name` (`nft -j` leaves them out; tproxy keeps its record there). */
  readonly tableComments?: Readonly<Record<string, string>>;
  /** Whether this process may use io_uring (the uring TCP engine), and why. */
  readonly ioUring?: { readonly available: boolean; readonly why: string };
}

/** `ip -j addr` output. */
export function parseInterfaces(json: unknown): Interface[] {
  if (!Array.isArray(json)) return [];
  return (json as Record<string, unknown>[]).map((link) => ({
    name: typeof link.ifname === 'string' ? link.ifname : '',
    addresses: (Array.isArray(link.addr_info) ? (link.addr_info as Record<string, unknown>[]) : [])
      .filter((a) => typeof a.local === 'string')
      .map((a) => ({ ip: parseIp(a.local as string), prefixLength: Number(a.prefixlen ?? 0), secondary: a.secondary === true, tentative: a.tentative === true })),
  }));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function badField(field: string, what: string, value: unknown): never {
  const got = value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : typeof value === 'string' ? 'text' : typeof value;
  throw new TproxyError('ERR_INVALID_ARGUMENT', `snapshot: "${field}" must be ${what}, not ${got}: the file is damaged or was edited; make a new one with \`tproxy snapshot > state.json\``, { field });
}

/** `object.key` is absent (when `optional`) or text. */
function checkText(object: Record<string, unknown>, key: string, field: string, optional: boolean): void {
  const value = object[key];
  if ((value === undefined && optional) || typeof value === 'string') return;
  badField(field, 'text', value);
}

/** Every value of the object is text (sysctls, errors, ...). */
function checkTexts(value: unknown, field: string): void {
  if (!isObject(value)) badField(field, 'an object of texts', value);
  for (const key of Object.keys(value)) checkText(value, key, `${field}.${key}`, false);
}

/**
 * The shape of a snapshot, checked before anything reads it: each source has the type the code
 * expects (the raw command outputs inside are read by parsers that refuse what they cannot use).
 */
export function checkSnapshot(value: unknown): Snapshot {
  const s = value as Partial<Snapshot> | null;
  if (!s || typeof s !== 'object' || s.format !== SNAPSHOT_FORMAT || s.version !== 1) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `not a tproxy snapshot (format "${SNAPSHOT_FORMAT}", version 1): make one with \`tproxy snapshot > state.json\``);
  }
  const o = s as Record<string, unknown>;
  checkText(o, 'takenAt', 'takenAt', false);
  if (o.nft !== null && !isObject(o.nft)) badField('nft', 'an object (nft -j list ruleset) or null', o.nft);
  if (!isObject(o.iptables)) badField('iptables', 'an object with the ipv4 and ipv6 iptables-save texts', o.iptables);
  for (const family of ['ipv4', 'ipv6']) checkText(o.iptables, family, `iptables.${family}`, true);
  if (o.iptablesLegacy !== undefined) {
    if (!isObject(o.iptablesLegacy)) badField('iptablesLegacy', 'an object with the ipv4 and ipv6 iptables-legacy-save texts', o.iptablesLegacy);
    for (const family of ['ipv4', 'ipv6']) checkText(o.iptablesLegacy, family, `iptablesLegacy.${family}`, true);
  }
  for (const field of ['ipRules', 'routes'] as const) {
    const v = o[field];
    if (!isObject(v)) badField(field, 'an object with the ipv4 and ipv6 lists (ip -j)', v);
    for (const family of ['ipv4', 'ipv6']) if (!Array.isArray(v[family])) badField(`${field}.${family}`, 'a list (ip -j)', v[family]);
  }
  if (!Array.isArray(o.addresses)) badField('addresses', 'a list (ip -j addr)', o.addresses);
  checkText(o, 'sockets', 'sockets', false);
  checkTexts(o.sysctls, 'sysctls');
  checkTexts(o.errors, 'errors');
  if (o.host !== undefined) {
    const host = o.host;
    if (!isObject(host)) badField('host', 'an object', host);
    if (host.probes !== undefined) {
      if (!isObject(host.probes)) badField('host.probes', 'an object', host.probes);
      for (const [id, probe] of Object.entries(host.probes)) {
        if (!isObject(probe) || typeof probe.ok !== 'boolean') badField(`host.probes.${id}`, 'an object with ok: true or false', probe);
        checkText(probe, 'detail', `host.probes.${id}.detail`, true);
      }
    }
    checkText(host, 'modules', 'host.modules', true);
    if (host.xtables !== undefined) {
      if (!isObject(host.xtables)) badField('host.xtables', 'an object', host.xtables);
      for (const key of ['targets4', 'matches4', 'targets6', 'matches6']) checkText(host.xtables, key, `host.xtables.${key}`, true);
    }
    if (host.self !== undefined && (!isObject(host.self) || typeof host.self.uid !== 'number' || typeof host.self.capEff !== 'string')) badField('host.self', 'an object with uid (a number) and capEff (text)', host.self);
    if (host.processes !== undefined) {
      if (!isObject(host.processes)) badField('host.processes', 'an object', host.processes);
      for (const [pid, p] of Object.entries(host.processes)) if (!isObject(p) || typeof p.capEff !== 'string') badField(`host.processes.${pid}`, 'an object with capEff (text)', p);
    }
    if (host.tableComments !== undefined) checkTexts(host.tableComments, 'host.tableComments');
  }
  return s as Snapshot;
}

/**
 * Read one source of the snapshot with its parser. The shape is checked (checkSnapshot); what a
 * parser finds inside a command's output that it cannot use is said naming the source, as the
 * project's error, whatever the parser tripped on.
 */
export function readSource<T>(source: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof TproxyError) throw error;
    throw new TproxyError('ERR_INVALID_ARGUMENT', `snapshot: "${source}" is not what ${source === 'nft' ? 'nft -j list ruleset' : source === 'sockets' ? 'ss' : source === 'iptables' ? 'iptables-save' : 'ip -j'} prints (${(error as Error).message}): the file is damaged or was edited; make a new one with \`tproxy snapshot > state.json\``, { field: source }, { cause: error });
  }
}

export function worldFromSnapshot(snapshot: Snapshot): World {
  const nft = readSource('nft', () => (snapshot.nft ? parseNftJson(snapshot.nft) : { tables: [] }));
  // An iptables mangle table without rules and with accepting policies changes nothing: left out.
  const used = (t: Table | undefined): t is Table => t !== undefined && t.chains.some((c) => c.rules.length > 0 || c.base?.policy === 'drop');
  const xt = readSource('iptables', () => [parseIptablesSave(snapshot.iptables.ipv4 ?? '', 4), parseIptablesSave(snapshot.iptables.ipv6 ?? '', 6)]).filter(used);
  // The legacy x_tables hook in beside nf_tables: a host can have rules in both at once.
  const legacy = readSource('iptablesLegacy', () => [parseIptablesSave(snapshot.iptablesLegacy?.ipv4 ?? '', 4, 'iptables-legacy'), parseIptablesSave(snapshot.iptablesLegacy?.ipv6 ?? '', 6, 'iptables-legacy')]).filter(used);
  // iptables-nft keeps its tables in nf_tables too (with xt expressions nft cannot show): the
  // iptables-save reading of the same table replaces them.
  const tables = [...nft.tables.filter((t) => !xt.some((x) => x.family === t.family && x.name === t.name)), ...xt, ...legacy];
  const interfaces = readSource('addresses', () => parseInterfaces(snapshot.addresses));
  const routing = {
    rules: readSource('ipRules', () => [...parseIpRules(snapshot.ipRules.ipv4, 4), ...parseIpRules(snapshot.ipRules.ipv6, 6)]),
    routes: readSource('routes', () => [...parseRoutes(snapshot.routes.ipv4, 4), ...parseRoutes(snapshot.routes.ipv6, 6)]),
  };
  const partial: World = { ruleset: { tables }, routing, sockets: [], interfaces, sysctls: snapshot.sysctls };
  // TIME_WAIT sockets report no options; one bound to an address that is not ours must be transparent.
  const sockets = readSource('sockets', () => parseSsSockets(snapshot.sockets)).map((s) =>
    s.transparentSource === 'inferred' ? { ...s, transparent: s.local.addr.value !== 0n && !isLocalAddress(partial, s.local.addr) } : s,
  );
  return { ...partial, sockets };
}

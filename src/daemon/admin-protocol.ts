/**
 * The admin socket's protocol: one JSON object per line each way. Pure.
 *
 *   -> {"id": 1, "method": "status", "params": {"top": 10}}
 *   <- {"id": 1, "ok": true, "result": {...DaemonStatus}}
 *   <- {"id": 1, "ok": false, "error": {"code": "ERR_INVALID_ARGUMENT", "message": "..."}}
 *
 * Methods: `ping` (pid and version: who answers here), `status` (everything `tproxy status` shows),
 * `config` (the configuration in force, secrets masked: what doctor and `rules status` judge against),
 * `ready` (ready for new flows or not, with the reasons: what /readyz answers), `drain` and
 * `undrain` (take the gateway out of service on purpose and back; each answers like `ready`).
 */
import type { TcpCapacity } from '../dataplane/tcp/capacity.js';
import type { TcpEngineKind } from '../dataplane/tcp/engines.js';
import type { TproxyConfig } from '../core/config/tproxy-config.js';
import { TproxyError, isTproxyError } from '../core/errors.js';
import { clipped } from '../core/quote.js';
import type { Endpoint } from '../core/net/sockaddr.js';
import type { Transport } from '../core/net/constants.js';
import type { RulesConfig } from '../core/rules/config.js';
import type { MmproxyEndpoint } from '../core/config/sections/mmproxy.js';
import type { MmproxyCounters } from '../dataplane/mmproxy/counters.js';
import type { RulesStatus } from '../control/apply.js';
import type { BackendChoice } from '../control/backend.js';
import type { ProxyCounters } from '../dataplane/proxy.js';
import { MAX_FLOWS_LIMIT, type TcpFlowSnapshot } from '../dataplane/tcp/flows.js';

export const ADMIN_METHODS = ['ping', 'status', 'config', 'ready', 'drain', 'undrain'] as const;
export type AdminMethod = (typeof ADMIN_METHODS)[number];

export const DEFAULT_TOP_FLOWS = 10;

export interface AdminRequest {
  readonly id: number | string | null;
  readonly method: AdminMethod;
  /** status: how many busiest flows (0 to 1000, default 10). */
  readonly top: number;
}

export type AdminResponse<T = unknown> =
  | { readonly id: number | string | null; readonly ok: true; readonly result: T }
  | { readonly id: number | string | null; readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

export interface PingResult {
  readonly pid: number;
  readonly version: string;
}

/**
 * The configuration a daemon runs with now (a reload changes it), as the kernel side sees it: the
 * rules configuration, whether the daemon applies those rules itself, and the options it was started
 * with (to repeat in a fix command). Secrets (upstream proxy passwords) are masked.
 */
export interface DaemonConfig {
  readonly pid: number;
  readonly version: string;
  /** The --config file, when it was started with one. */
  readonly file?: string;
  /** Its command line after `tproxy run`, passwords masked. */
  readonly argv: readonly string[];
  /** rules.apply: false when the rules are managed elsewhere (--no-rules). */
  readonly rulesApply: boolean;
  readonly backend: BackendChoice;
  /** transparent when any listener connects upstream from the client's address. */
  readonly upstream: 'direct' | 'transparent';
  readonly rules: RulesConfig;
  /** Per TCP listener: the configured cap and engine (doctor judges the cap under the host's file limit). Absent from older daemons. */
  readonly tcp?: readonly TcpLimits[];
}

/** A TCP listener's configured connection cap and engine. */
export interface TcpLimits {
  readonly listener: string;
  readonly maxConnections: number;
  readonly engine: TcpEngineKind;
}

/** The TCP listeners of a configuration, with their caps. Pure. */
export function tcpLimitsOf(config: TproxyConfig): TcpLimits[] {
  return config.listeners.filter((l) => l.intercept.some((s) => s.transport === 'tcp')).map((l) => ({ listener: l.name, maxConnections: l.maxConnections, engine: config.tcp.engine }));
}

/** `scheme://user:password@host` -> `scheme://user:***@host`, wherever it appears in a word. */
export function maskSecrets(word: string): string {
  return word.replace(/([a-z][a-z0-9+.-]*:\/\/[^:@/\s]*):[^@/\s]*@/gi, '$1:***@');
}

export type RulesView =
  | { readonly managed: false }
  | ({ readonly managed: true } & RulesStatus)
  | { readonly managed: true; readonly backend: string; readonly error: string };

export interface ListenerStatus {
  readonly name: string;
  /** Its sockets (TCP and UDP, per family). */
  readonly sockets: readonly (Endpoint & { readonly transport: Transport })[];
  readonly counters: ProxyCounters;
  readonly workers: { readonly pids: readonly number[]; readonly restarts: number };
  /** The TCP connection cap in force per worker, and whether the descriptor limit lowered it. */
  readonly capacity: TcpCapacity;
}

export interface DaemonStatus {
  readonly state: 'starting' | 'running' | 'stopping';
  readonly pid: number;
  readonly version: string;
  readonly node: string;
  readonly engine: string;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly listeners: readonly ListenerStatus[];
  readonly rules: RulesView;
  /** The busiest TCP flows over every listener, by bytes both ways, at most `top` of the request. */
  readonly flows: readonly (TcpFlowSnapshot & { readonly listener: string })[];
  /** The mmproxy listeners (absent from older daemons, and when none are configured). */
  readonly mmproxy?: MmproxyStatusView;
}

export interface MmproxyListenerStatus {
  readonly name: string;
  /** tcp: connections behind PROXY v1/v2; udp: datagrams each behind its own v2 header (absent: tcp, from an older daemon). */
  readonly protocol?: 'tcp' | 'udp';
  readonly listen: readonly MmproxyEndpoint[];
  /** Fixed backends; absent: the header's destination. */
  readonly backend4?: MmproxyEndpoint;
  readonly backend6?: MmproxyEndpoint;
  readonly counters: MmproxyCounters;
}

export interface MmproxyStatusView {
  readonly listeners: readonly MmproxyListenerStatus[];
  /** Connections of listeners a reload replaced or removed, still finishing. */
  readonly drainingConnections: number;
}

const invalid = (message: string): TproxyError => new TproxyError('ERR_INVALID_ARGUMENT', `admin request: ${message}`);

export function parseAdminRequest(line: string): AdminRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw invalid('not JSON: send one JSON object per line, e.g. {"id":1,"method":"status"}');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('not a JSON object');
  const { id = null, method, params = {} } = value as { id?: unknown; method?: unknown; params?: unknown };
  if (id !== null && typeof id !== 'number' && typeof id !== 'string') throw invalid('"id" must be a number or a string');
  const known = ADMIN_METHODS.find((m) => m === method);
  if (!known) throw invalid(`unknown method ${clipped(JSON.stringify(method) ?? 'nothing')}: use ${ADMIN_METHODS.join(', ')}`);
  if (params === null || typeof params !== 'object' || Array.isArray(params)) throw invalid('"params" must be an object');
  const top = (params as { top?: unknown }).top ?? DEFAULT_TOP_FLOWS;
  if (typeof top !== 'number' || !Number.isInteger(top) || top < 0 || top > MAX_FLOWS_LIMIT) throw invalid(`"params.top" must be an integer from 0 to ${MAX_FLOWS_LIMIT}`);
  return { id, method: known, top };
}

/** The id of a request line, if one can be read (for answering a request that failed to parse). */
function idOf(line: string): number | string | null {
  try {
    const id = (JSON.parse(line) as { id?: unknown }).id;
    return typeof id === 'number' || typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

/** Answer one request line with `run`; every failure becomes an error response, never a throw. */
export async function answer(line: string, run: (request: AdminRequest) => Promise<unknown>): Promise<string> {
  let response: AdminResponse;
  try {
    const request = parseAdminRequest(line);
    try {
      response = { id: request.id, ok: true, result: await run(request) };
    } catch (error) {
      response = { id: request.id, ok: false, error: errorOf(error) };
    }
  } catch (error) {
    response = { id: idOf(line), ok: false, error: errorOf(error) };
  }
  return JSON.stringify(response);
}

function errorOf(error: unknown): { code: string; message: string } {
  return isTproxyError(error) ? { code: error.code, message: error.message } : { code: 'ERR_SYSCALL', message: (error as Error).message };
}

/** The result of a response line, or the daemon's error as a TproxyError. */
export function resultOf<T>(line: string): T {
  let response: AdminResponse<T>;
  try {
    response = JSON.parse(line) as AdminResponse<T>;
  } catch {
    throw new TproxyError('ERR_COMMAND_FAILED', `the admin socket answered something that is not JSON: ${line.slice(0, 200)}`);
  }
  if (response.ok) return response.result;
  throw new TproxyError('ERR_COMMAND_FAILED', `the daemon refused the request: ${response.error.message} [${response.error.code}]`, { daemonCode: response.error.code });
}

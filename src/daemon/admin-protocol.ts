/**
 * The admin socket's protocol: one JSON object per line each way. Pure.
 *
 *   -> {"id": 1, "method": "status", "params": {"top": 10}}
 *   <- {"id": 1, "ok": true, "result": {...DaemonStatus}}
 *   <- {"id": 1, "ok": false, "error": {"code": "ERR_INVALID_ARGUMENT", "message": "..."}}
 *
 * Methods: `ping` (pid and version: who answers here), `status` (everything `tproxy status` shows).
 */
import { TproxyError, isTproxyError } from '../core/errors.js';
import { clipped } from '../core/quote.js';
import type { Endpoint } from '../core/net/sockaddr.js';
import type { Transport } from '../core/net/constants.js';
import type { RulesStatus } from '../control/apply.js';
import type { ProxyCounters } from '../dataplane/proxy.js';
import { MAX_FLOWS_LIMIT, type TcpFlowSnapshot } from '../dataplane/tcp/flows.js';

export const ADMIN_METHODS = ['ping', 'status'] as const;
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
  if (!known) throw invalid(`unknown method ${clipped(JSON.stringify(method) ?? 'nothing')}: use ${ADMIN_METHODS.join(' or ')}`);
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

/** Messages between the UDP relay (main thread) and its worker loop. */
import type { Family } from '../../core/net/constants.js';
import type { ProxyEvent, UpstreamMode } from '../events.js';

export interface UdpWorkerData {
  readonly listeners: readonly { readonly fd: number; readonly family: Family; readonly port: number }[];
  readonly upstream: UpstreamMode;
  readonly upstreamMark: number;
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  readonly maxDatagramBytes: number;
  /** Int32Array view [0]: set to 1 to stop the loop. */
  readonly control: SharedArrayBuffer;
}

export type UdpWorkerMessage =
  | { readonly kind: 'ready' }
  | { readonly kind: 'events'; readonly events: readonly ProxyEvent[] }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'fatal'; readonly message: string; readonly code: string };

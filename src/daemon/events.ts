/** What the daemon reports: its proxies' events (named by listener) and its own. */
import type { FailMode } from '../core/rules/config.js';
import type { RemoveResult } from '../control/apply.js';
import type { ProxyEvent } from '../dataplane/events.js';
import type { ProxyCounters } from '../dataplane/proxy.js';
import type { ListenerChanges } from './reconcile.js';

/** One listener as the `ready` line describes it. */
export interface ReadyListener {
  readonly name: string;
  readonly port: number;
  readonly tcpWorkers: readonly number[];
  readonly maxConnectionsPerWorker: number;
  readonly capacity: string;
}

/** What `tproxy run` did with a signal (see cli/run-signals.ts). */
export type SignalAction = 'reload' | 'reload-queued' | 'stop' | 'stop-now' | 'ignored';

/** Events of the daemon itself (start, reloads, stop, rules, admin and metrics endpoints). */
export type DaemonOwnEvent =
  | { readonly type: 'privileges'; readonly uid: number; readonly capabilities: readonly string[]; readonly ambient: readonly string[] }
  | { readonly type: 'ready'; readonly pid: number; readonly listeners?: readonly ReadyListener[]; readonly tcpWorkers?: readonly number[]; readonly maxConnectionsPerWorker?: number }
  | { readonly type: 'reload'; readonly file: string }
  | ({ readonly type: 'reload.applied'; readonly rulesChanged: boolean } & ListenerChanges)
  | { readonly type: 'reload.rejected'; readonly error: string; readonly code?: string }
  | { readonly type: 'listener.draining'; readonly listener: string; readonly drainMs: number }
  | { readonly type: 'listener.stopped'; readonly listener: string; readonly flowsCompleted: number; readonly flowsReset: number }
  | { readonly type: 'signal'; readonly signal: NodeJS.Signals; readonly action: SignalAction; readonly message: string }
  | { readonly type: 'stopping'; readonly cause: 'signal'; readonly signal: NodeJS.Signals }
  | { readonly type: 'stopping'; readonly cause: 'failure'; readonly error: string }
  | { readonly type: 'stopped'; readonly flowsCompleted: number; readonly flowsReset: number; readonly counters?: ProxyCounters; readonly listeners?: Readonly<Record<string, ProxyCounters>> }
  | {
      readonly type: 'rules.applied';
      readonly backend: string;
      readonly table: string;
      readonly listeners: number;
      /** Listeners whose flows drain and keep the rules they need. */
      readonly draining?: readonly string[];
      readonly policyRoutes: number;
      readonly failMode: FailMode;
      readonly replaced?: { readonly owner?: number; readonly stale: boolean };
    }
  | ({ readonly type: 'rules.removed' } & RemoveResult)
  | { readonly type: 'rules.warning'; readonly message: string }
  | { readonly type: 'metrics.listening'; readonly address: string; readonly url: string }
  | { readonly type: 'dashboard.listening'; readonly url: string; readonly actions: string }
  | { readonly type: 'admin.listening'; readonly path: string; readonly mode: string }
  | { readonly type: 'admin.stale-socket'; readonly path: string; readonly message: string }
  | { readonly type: 'drained' | 'undrained'; readonly message: string }
  | { readonly type: 'config.changed'; readonly file: string };

/** With several listeners, the daemon adds the listener's name to each proxy event. */
export type DaemonEvent = (ProxyEvent & { readonly listener?: string }) | DaemonOwnEvent;

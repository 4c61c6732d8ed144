/** What the daemon reports: its proxies' events (named by listener) and its own. */
import type { ProxyEvent } from '../dataplane/events.js';

/** Events of the daemon itself (start, reloads, stop, rules, admin and metrics endpoints). */
export interface DaemonOwnEvent {
  readonly type:
    | 'privileges'
    | 'ready'
    | 'reload'
    | 'reload.applied'
    | 'reload.rejected'
    | 'listener.draining'
    | 'listener.stopped'
    | 'signal'
    | 'stopping'
    | 'stopped'
    | 'rules.applied'
    | 'rules.removed'
    | 'rules.warning'
    | 'metrics.listening'
    | 'admin.listening'
    | 'admin.stale-socket'
    | 'drained'
    | 'undrained'
    | 'config.changed';
  readonly [field: string]: unknown;
}

/** With several listeners, the daemon adds the listener's name to each proxy event. */
export type DaemonEvent = (ProxyEvent & { readonly listener?: string }) | DaemonOwnEvent;

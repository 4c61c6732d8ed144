/**
 * UDP sessions keyed by (client address:port, original destination address:port), kept in
 * least-recently-used order so the oldest can be evicted and idle ones expired. Pure.
 */
import type { Endpoint } from '../../core/net/sockaddr.js';

export function sessionKey(client: Pick<Endpoint, 'address' | 'port'>, destination: Pick<Endpoint, 'address' | 'port'>): string {
  return `${client.address}|${client.port}|${destination.address}|${destination.port}`;
}

export interface SessionLike {
  readonly key: string;
  lastActiveMs: number;
}

export class SessionTable<S extends SessionLike> {
  /** Map iteration order is insertion order: touching re-inserts, so the first entry is the LRU. */
  private readonly sessions = new Map<string, S>();

  get size(): number {
    return this.sessions.size;
  }

  get(key: string): S | undefined {
    return this.sessions.get(key);
  }

  add(session: S): void {
    this.sessions.set(session.key, session);
  }

  touch(session: S, nowMs: number): void {
    session.lastActiveMs = nowMs;
    this.sessions.delete(session.key);
    this.sessions.set(session.key, session);
  }

  delete(session: S): void {
    if (this.sessions.get(session.key) === session) this.sessions.delete(session.key);
  }

  /** The least recently used session (other than `keep`). */
  oldest(keep?: S): S | undefined {
    for (const s of this.sessions.values()) if (s !== keep) return s;
    return undefined;
  }

  /** Sessions idle for at least idleMs, oldest first. */
  expired(nowMs: number, idleMs: number): S[] {
    const out: S[] = [];
    for (const s of this.sessions.values()) {
      if (nowMs - s.lastActiveMs < idleMs) break;
      out.push(s);
    }
    return out;
  }

  values(): IterableIterator<S> {
    return this.sessions.values();
  }
}

/**
 * The daemon's mmproxy listeners (config section `mmproxy:`), beside the transparent ones: started
 * with the daemon, stopped with it, and on a reload changed where their settings differ (an entry
 * whose settings are unchanged keeps running and its flows never notice; a changed one is stopped,
 * then started again, so it may keep its port; a removed one is stopped). The reply routing they
 * need (loopback rule, divert, fwmark route) is planned with the daemon's rules (rulesConfigOf).
 */
import { isDeepStrictEqual } from 'node:util';
import type { MmproxySettings } from '../core/config/sections/mmproxy.js';
import type { MmproxyCounters } from '../dataplane/mmproxy/counters.js';
import { MmproxyTcpRelay } from '../dataplane/mmproxy/tcp-relay.js';
import type { EventSink } from '../dataplane/events.js';
import type { DescriptorBudget } from '../sys/descriptor-budget.js';
import type { SocketApi } from '../sys/socket.js';

interface Running {
  readonly settings: MmproxySettings;
  readonly relay: MmproxyTcpRelay;
}

export interface MmproxyListenersDeps {
  readonly sockets: SocketApi;
  readonly emit: EventSink;
  readonly budget?: DescriptorBudget;
}

export class MmproxyListeners {
  private readonly running = new Map<string, Running>();

  constructor(private readonly deps: MmproxyListenersDeps) {}

  /** Make the running listeners those of `wanted`. A listener that cannot start throws (with its address); the others stay as they were. */
  async apply(wanted: readonly MmproxySettings[]): Promise<void> {
    for (const [name, r] of [...this.running]) {
      const next = wanted.find((w) => w.name === name);
      if (next && isDeepStrictEqual(next, r.settings)) continue;
      this.running.delete(name);
      await r.relay.stop();
    }
    for (const settings of wanted) {
      if (this.running.has(settings.name)) continue;
      const relay = new MmproxyTcpRelay(settings, this.deps);
      await relay.start();
      this.running.set(settings.name, { settings, relay });
    }
  }

  async stop(): Promise<void> {
    const all = [...this.running.values()];
    this.running.clear();
    await Promise.all(all.map((r) => r.relay.stop()));
  }

  /** Each listener's counters, by name. */
  counters(): Record<string, MmproxyCounters> {
    return Object.fromEntries([...this.running].map(([name, r]) => [name, r.relay.counters]));
  }
}

/**
 * The dashboard's table of flows in progress (TCP flows, UDP sessions, and the sessions of mmproxy
 * `protocol: udp` entries), fed by the data plane's per-flow events and by the engines' byte
 * counts, and the changes it reports for the page
 * (added, updated, removed), so the page never needs the whole table again. Bounded: past
 * maxFlows, new flows are counted (untracked) but not kept. Pure: no I/O, the clock passed in.
 */
import { formatEndpoint, type Endpoint } from '../../core/net/sockaddr.js';
import type { TcpFlowSnapshot } from '../../dataplane/tcp/flows.js';
import type { UdpSessionSnapshot } from '../../dataplane/udp/protocol.js';
import type { MmproxyUdpSessionSnapshot } from '../../dataplane/mmproxy/udp-relay.js';
import type { DaemonEvent } from '../events.js';

export interface DashboardFlow {
  /** Unique among the flows in progress: transport, listener, worker process (TCP) and id. */
  readonly key: string;
  readonly transport: 'tcp' | 'udp';
  /** The TPROXY listener, or (with `backend`) the mmproxy entry. */
  readonly listener: string;
  /** The flow's number in its engine, and (TCP in worker processes) the worker's pid. */
  readonly id: number;
  readonly pid?: number;
  readonly client: string;
  readonly originalDestination: string;
  name?: string;
  route?: string;
  outbound?: string;
  /** mmproxy sessions only: where the payloads go, and the balancer they came through. */
  readonly backend?: string;
  readonly balancer?: string;
  bytesFromClient: number;
  bytesFromServer: number;
  /** When it was accepted (ms since the epoch). */
  readonly startedAt: number;
}

export type FlowChange =
  | { readonly op: 'add'; readonly flow: DashboardFlow }
  | { readonly op: 'update'; readonly key: string; readonly fields: Partial<Pick<DashboardFlow, 'name' | 'route' | 'outbound' | 'bytesFromClient' | 'bytesFromServer'>> }
  | { readonly op: 'remove'; readonly key: string; readonly reason: string; readonly bytesFromClient: number; readonly bytesFromServer: number };

/** The listener of a proxy event in a daemon with one unnamed listener. */
const MAIN = 'main';

export function tcpFlowKey(listener: string, id: number, pid: number | undefined): string {
  return `tcp/${listener}/${pid ?? 0}/${id}`;
}

export function udpFlowKey(listener: string, id: number): string {
  return `udp/${listener}/${id}`;
}

/** A session of mmproxy entry `listener` (entries are named apart from TPROXY listeners: a name may be both). */
export function mmproxyUdpFlowKey(listener: string, id: number): string {
  return `mmproxy-udp/${listener}/${id}`;
}

/** Where a key says the flow is: what closing it needs. */
export function parseFlowKey(key: string): { transport: 'tcp' | 'udp'; mmproxy?: true; listener: string; pid?: number; id: number } | undefined {
  const tcp = /^tcp\/(.+)\/(\d+)\/(\d+)$/.exec(key);
  if (tcp) return { transport: 'tcp', listener: tcp[1]!, ...(tcp[2] === '0' ? {} : { pid: Number(tcp[2]) }), id: Number(tcp[3]) };
  const mmproxy = /^mmproxy-udp\/(.+)\/(\d+)$/.exec(key);
  if (mmproxy) return { transport: 'udp', mmproxy: true, listener: mmproxy[1]!, id: Number(mmproxy[2]) };
  const udp = /^udp\/(.+)\/(\d+)$/.exec(key);
  return udp ? { transport: 'udp', listener: udp[1]!, id: Number(udp[2]) } : undefined;
}

const text = (e: Endpoint): string => formatEndpoint(e);

export class FlowTable {
  private readonly flows = new Map<string, DashboardFlow>();
  /** Flows accepted (TCP) or opened (UDP) since the start: the page's new flows per second. */
  opened = 0;
  /** Flows not kept because the table was full. */
  untracked = 0;

  constructor(
    readonly maxFlows: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.flows.size;
  }

  /** The flows in progress, oldest first. */
  list(): DashboardFlow[] {
    return [...this.flows.values()];
  }

  get(key: string): DashboardFlow | undefined {
    return this.flows.get(key);
  }

  /** One event of the daemon; the change it makes to the table, if any. */
  apply(event: DaemonEvent): FlowChange | undefined {
    const listener = 'listener' in event && typeof event.listener === 'string' ? event.listener : MAIN;
    switch (event.type) {
      case 'tcp.accept':
        this.opened++;
        return this.add({ key: tcpFlowKey(listener, event.id, event.pid), transport: 'tcp', listener, id: event.id, ...(event.pid !== undefined ? { pid: event.pid } : {}), client: text(event.client), originalDestination: text(event.originalDestination), bytesFromClient: 0, bytesFromServer: 0, startedAt: this.now() });
      case 'tcp.route': {
        const flow = this.flows.get(tcpFlowKey(listener, event.id, event.pid));
        if (!flow) return undefined;
        const fields = { ...(event.route !== undefined ? { route: event.route } : {}), outbound: event.outbound, ...(event.name !== undefined ? { name: event.name } : {}) };
        Object.assign(flow, fields);
        return { op: 'update', key: flow.key, fields };
      }
      case 'tcp.close':
        return this.remove(tcpFlowKey(listener, event.id, event.pid), event.reason, event.bytesFromClient, event.bytesFromServer);
      case 'udp.session.open':
        this.opened++;
        return this.add({ key: udpFlowKey(listener, event.id), transport: 'udp', listener, id: event.id, client: text(event.client), originalDestination: text(event.originalDestination), ...(event.route !== undefined ? { route: event.route } : {}), ...(event.outbound !== undefined ? { outbound: event.outbound } : {}), bytesFromClient: 0, bytesFromServer: 0, startedAt: this.now() });
      case 'udp.session.close':
        return this.remove(udpFlowKey(listener, event.id), event.reason, event.bytesFromClient, event.bytesFromServer);
      case 'mmproxy.udp.open':
        this.opened++;
        return this.add({ key: mmproxyUdpFlowKey(event.listener, event.id), transport: 'udp', listener: event.listener, id: event.id, client: text(event.client), originalDestination: text(event.originalDestination), backend: text(event.backend), balancer: text(event.balancer), bytesFromClient: 0, bytesFromServer: 0, startedAt: this.now() });
      case 'mmproxy.udp.close':
        return this.remove(mmproxyUdpFlowKey(event.listener, event.id), event.reason, event.bytesFromClient, event.bytesFromBackend);
      default:
        return undefined;
    }
  }

  /** A TCP worker died: its flows are gone (reset by the kernel), without close events. */
  dropWorker(listener: string, pid: number): FlowChange[] {
    const changes: FlowChange[] = [];
    for (const flow of [...this.flows.values()]) {
      if (flow.transport === 'tcp' && flow.listener === listener && flow.pid === pid) changes.push(this.remove(flow.key, 'worker-lost', flow.bytesFromClient, flow.bytesFromServer) as FlowChange);
    }
    return changes;
  }

  /** A listener stopped: whatever is left of its flows is gone. */
  dropListener(listener: string): FlowChange[] {
    const changes: FlowChange[] = [];
    for (const flow of [...this.flows.values()]) if (flow.listener === listener) changes.push(this.remove(flow.key, 'stopped', flow.bytesFromClient, flow.bytesFromServer) as FlowChange);
    return changes;
  }

  /** Byte counts of a listener's TCP flows in progress (the engines' busiest flows): what changed. */
  updateBytes(listener: string, snapshots: readonly TcpFlowSnapshot[]): FlowChange[] {
    return this.setBytes(snapshots.map((s) => ({ key: tcpFlowKey(listener, s.id, s.pid), bytesFromClient: s.bytesFromClient, bytesFromServer: s.bytesFromServer })));
  }

  /** The same for UDP sessions in progress (the loop's snapshot of them). */
  updateUdpBytes(listener: string, sessions: readonly UdpSessionSnapshot[]): FlowChange[] {
    return this.setBytes(sessions.map((s) => ({ key: udpFlowKey(listener, s.id), bytesFromClient: s.bytesFromClient, bytesFromServer: s.bytesFromServer })));
  }

  /** The same for the sessions of an mmproxy `protocol: udp` entry (the relay's snapshot of them). */
  updateMmproxyUdpBytes(listener: string, sessions: readonly MmproxyUdpSessionSnapshot[]): FlowChange[] {
    return this.setBytes(sessions.map((s) => ({ key: mmproxyUdpFlowKey(listener, s.id), bytesFromClient: s.bytesFromClient, bytesFromServer: s.bytesFromBackend })));
  }

  private setBytes(snapshots: readonly { readonly key: string; readonly bytesFromClient: number; readonly bytesFromServer: number }[]): FlowChange[] {
    const changes: FlowChange[] = [];
    for (const s of snapshots) {
      const flow = this.flows.get(s.key);
      if (!flow || (flow.bytesFromClient === s.bytesFromClient && flow.bytesFromServer === s.bytesFromServer)) continue;
      flow.bytesFromClient = s.bytesFromClient;
      flow.bytesFromServer = s.bytesFromServer;
      changes.push({ op: 'update', key: flow.key, fields: { bytesFromClient: s.bytesFromClient, bytesFromServer: s.bytesFromServer } });
    }
    return changes;
  }

  private add(flow: DashboardFlow): FlowChange | undefined {
    if (this.flows.size >= this.maxFlows) {
      this.untracked++;
      return undefined;
    }
    this.flows.set(flow.key, flow);
    return { op: 'add', flow };
  }

  private remove(key: string, reason: string, bytesFromClient: number, bytesFromServer: number): FlowChange | undefined {
    if (!this.flows.delete(key)) return undefined;
    return { op: 'remove', key, reason, bytesFromClient, bytesFromServer };
  }
}

/**
 * One batch of changes as the page needs it: per flow, the net effect. A flow added and removed
 * within the batch (a short connection) is left out altogether, updates are merged into its add
 * or into one update, and an update followed by its removal is the removal. Order of first
 * appearance is kept.
 */
export function coalesce(changes: readonly FlowChange[]): FlowChange[] {
  const net = new Map<string, FlowChange | undefined>();
  for (const c of changes) {
    const key = c.op === 'add' ? c.flow.key : c.key;
    const before = net.get(key);
    if (c.op === 'add') net.set(key, { op: 'add', flow: { ...c.flow } });
    else if (c.op === 'update') {
      if (before === undefined && net.has(key)) continue; // added and removed already: gone
      if (before?.op === 'add') Object.assign(before.flow, c.fields);
      else if (before?.op === 'update') net.set(key, { op: 'update', key, fields: { ...before.fields, ...c.fields } });
      else if (before?.op !== 'remove') net.set(key, c);
    } else if (before?.op === 'add') net.set(key, undefined);
    else net.set(key, c);
  }
  return [...net.values()].filter((c): c is FlowChange => c !== undefined);
}

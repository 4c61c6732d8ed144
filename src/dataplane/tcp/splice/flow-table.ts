/**
 * The relayed flows of a splice engine (the TPROXY engine.ts and mmproxy's splice-engine.ts): who
 * owns each registered descriptor, the flows in progress and those whose upstream connect is under
 * way (in start order, so in deadline order), a flow's start (its upstream socket watched for the
 * connect's end), the outcome of that connect, its close (sockets and pipes, through the pump), and
 * the connect and idle deadlines. What each engine counts and reports stays in the engine.
 */
import * as C from '../../../core/net/constants.js';
import type { SocketApi } from '../../../sys/socket.js';
import type { FlowPump, SplicedPair } from './flow-pump.js';
import type { InterestSet } from './interest.js';
import { duePrefix } from './timers.js';

/** What the table reads and updates of an engine's flow. */
export interface TableFlow extends SplicedPair {
  readonly connectDeadline: number;
  connected: boolean;
  closed: boolean;
}

/** The owner of one of a flow's sockets. */
export interface FlowSocket<F> {
  readonly kind: 'client' | 'upstream';
  readonly flow: F;
}

/** Why the table ends a flow on its own. */
export type Expiry = 'connect-timeout' | 'idle-timeout';

/** A connect still under way: connectOutcome's answer when the events say nothing yet. */
export const CONNECTING = -1;

/**
 * The outcome of an upstream connect from its socket's epoll events: 0 connected, an errno number
 * (it failed), CONNECTING (not yet). SO_ERROR costs a call only when the events report an error.
 */
export function connectOutcome(api: SocketApi, ufd: number, events: number): number {
  const soError = events & (C.EPOLLERR | C.EPOLLHUP) ? api.getInt(ufd, C.SOL_SOCKET, C.SO_ERROR) : 0;
  if (soError !== 0) return soError;
  return events & C.EPOLLOUT ? 0 : CONNECTING;
}

/** `O`: the engine's other owners of descriptors (listeners, connections not yet flows). */
export class FlowTable<F extends TableFlow, O> {
  readonly owners = new Map<number, O | FlowSocket<F>>();
  readonly flows = new Set<F>();
  /** Flows waiting for their upstream connect, in start order (so in deadline order). */
  readonly connecting = new Set<F>();

  constructor(
    private readonly epoll: InterestSet,
    private readonly pairs: Pick<FlowPump<F>, 'close'>,
  ) {}

  /** A flow whose upstream connect was started: its two sockets are its own, the upstream one watched for the connect's end. */
  add(flow: F): void {
    this.flows.add(flow);
    this.connecting.add(flow);
    this.owners.set(flow.cfd, { kind: 'client', flow });
    this.owners.set(flow.ufd, { kind: 'upstream', flow });
    this.epoll.add(flow.ufd, C.EPOLLOUT);
    flow.uInterest = C.EPOLLOUT;
  }

  /** Its upstream is connected (and any handshake done): no longer under the connect deadline. */
  connected(flow: F): void {
    flow.connected = true;
    this.connecting.delete(flow);
  }

  /**
   * Close the flow's sockets and give its pipes back (FlowPump.close: a FIN after `done`, else
   * resets), and forget it. False when it was closed already (the engine counts nothing then).
   */
  close(flow: F, reason: string): boolean {
    if (flow.closed) return false;
    flow.closed = true;
    this.owners.delete(flow.cfd);
    this.owners.delete(flow.ufd);
    this.pairs.close(flow, reason);
    this.flows.delete(flow);
    this.connecting.delete(flow);
    return true;
  }

  /**
   * Flows past their connect deadline, then (when `idleMs` is given: the idle pass is due)
   * connected flows with nothing moved for idleMs, each handed to `end` (which closes it).
   */
  expire(now: number, idleMs: number | undefined, end: (flow: F, why: Expiry) => void): void {
    for (const flow of duePrefix(this.connecting, now, (f) => f.connectDeadline)) end(flow, 'connect-timeout');
    if (idleMs === undefined) return;
    for (const flow of [...this.flows]) if (flow.connected && now - flow.lastActive >= idleMs) end(flow, 'idle-timeout');
  }
}

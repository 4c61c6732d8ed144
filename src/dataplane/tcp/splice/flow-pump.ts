/**
 * A relayed pair of sockets on the splice engines (the TPROXY engine and mmproxy's): on an epoll
 * event, the directions it can move are pumped (pump.ts), FINs passed on, and each socket's epoll
 * interest set to match. Says why the pair ends (done, a socket's error, no pipe); the engine
 * counts that its own way, and closes the pair's sockets and pipes here. A direction that needs a
 * pipe while the budget is spent waits in the pool's line, and is pumped again once woken.
 */
import { errnoName } from '../../../core/errno.js';
import * as C from '../../../core/net/constants.js';
import type { Libc } from '../../../sys/libc.js';
import type { SocketApi } from '../../../sys/socket.js';
import { socketInterest, updateInterest, type InterestSet } from './interest.js';
import type { PipePool } from './pipe-pool.js';
import { Pump, type Direction } from './pump.js';

/** What the pump reads and updates of an engine's flow. */
export interface SplicedPair {
  readonly cfd: number;
  readonly ufd: number;
  /** client -> upstream */
  readonly up: Direction;
  /** upstream -> client */
  readonly down: Direction;
  lastActive: number;
  /** Current epoll interest per socket (NOT_WATCHED: not registered). */
  cInterest: number;
  uInterest: number;
  /** Closed by the engine (its sockets and pipes gone). */
  readonly closed: boolean;
}

/** Why a pair ends: `done` (both ways shut), `<side>-<errno>`, or `pipe` (no pipe could be had: pipeErrno). */
export interface PairEnd {
  readonly reason: string;
  readonly pipeErrno?: string;
}

const DONE: PairEnd = { reason: 'done' };

export class FlowPump<P extends SplicedPair> {
  private readonly pump: Pump;

  constructor(
    private readonly libc: Libc,
    private readonly api: SocketApi,
    /** Wakes the pairs whose waiting direction was handed a pipe (the engine pumps them: `woken`). */
    private readonly pipes: PipePool<P>,
    private readonly epoll: InterestSet,
    private readonly pipeBytes: number,
    private readonly now: () => number,
    /** The upstream side's name in end reasons (`upstream-ECONNRESET`, `backend-ECONNRESET`). */
    private readonly upstreamName: string,
  ) {
    this.pump = new Pump(libc, pipes, pipeBytes);
  }

  /**
   * Close the pair's sockets, which also takes them out of the epoll set (no other descriptor
   * refers to them): after `done` a FIN (both ways were read to their end), else a reset. It
   * leaves the pool's line; its pipes go back to the pool (to the first waiter, kept when empty).
   */
  close(p: P, reason: string): void {
    for (const fd of [p.cfd, p.ufd]) {
      if (reason === 'done') this.libc.close(fd);
      else this.api.resetClose(fd);
    }
    this.pipes.forget(p.up);
    this.pipes.forget(p.down);
    this.pipes.release(p.up, p.up.buffered === 0, p.down);
    this.pipes.release(p.down, p.down.buffered === 0, p.up);
  }

  /**
   * Pump the pairs whose waiting direction was handed a pipe since the last call (pipes given back
   * by drained directions and closed pairs), only the directions that now hold a pipe (an idle
   * other way must not join the line). Each pump may give pipes back and wake more: bounded by the
   * line, which holds at most two directions per pair (`pairs`: how many the engine has open).
   * `ended`: a pair that ends here (the engine counts and closes it).
   */
  wakeWaiters(pairs: number, ended: (p: P, end: PairEnd) => void): void {
    for (let rounds = 0; rounds <= 2 * pairs; rounds++) {
      const woken = this.pipes.takeWoken();
      if (woken.length === 0) return;
      for (const p of woken) {
        if (p.closed) continue;
        const end = this.all(p, p.up.r >= 0, p.down.r >= 0);
        if (end) ended(p, end);
      }
    }
  }

  /** Events on one socket of a connected pair. Undefined: it goes on. */
  onEvents(p: P, side: 'client' | 'upstream', events: number): PairEnd | undefined {
    if (events & C.EPOLLERR) {
      const soError = this.api.getInt(side === 'client' ? p.cfd : p.ufd, C.SOL_SOCKET, C.SO_ERROR);
      if (soError !== 0) return { reason: `${this.nameOf(side)}-${errnoName(soError)}` };
    }
    // Only the directions this event can move: a readable socket feeds its direction, a writable
    // one drains the other (HUP and ERR count as both, so EOF and errors are seen).
    const readable = (events & (C.EPOLLIN | C.EPOLLRDHUP | C.EPOLLHUP | C.EPOLLERR)) !== 0;
    const writable = (events & (C.EPOLLOUT | C.EPOLLHUP | C.EPOLLERR)) !== 0;
    // The peer's FIN is already here: read on to it in this turn, so the FIN follows the last
    // bytes at once (a client that closes first on seeing a whole response would otherwise be the
    // one left in TIME_WAIT, and run out of ports).
    const finished = (events & (C.EPOLLRDHUP | C.EPOLLHUP)) !== 0;
    return side === 'client' ? this.all(p, readable, writable, finished, false) : this.all(p, writable, readable, false, finished);
  }

  /** Move what can be moved both ways, pass FINs on, then set epoll interest to match. Undefined: it goes on. */
  all(p: P, up = true, down = true, upFinished = false, downFinished = false): PairEnd | undefined {
    const upEnd = up ? this.one(p, p.up, p.down, p.cfd, p.ufd, 'client', upFinished) : undefined;
    if (upEnd) return upEnd;
    const downEnd = down ? this.one(p, p.down, p.up, p.ufd, p.cfd, 'upstream', downFinished) : undefined;
    if (downEnd) return downEnd;
    if (p.up.shut && p.down.shut) return DONE;
    p.cInterest = updateInterest(this.epoll, p.cfd, p.cInterest, socketInterest(p.up, p.down, this.pipeBytes));
    p.uInterest = updateInterest(this.epoll, p.ufd, p.uInterest, socketInterest(p.down, p.up, this.pipeBytes));
    return undefined;
  }

  /** One direction. `finished`: the source's FIN has arrived. */
  private one(p: P, d: Direction, other: Direction, source: number, sink: number, sourceSide: 'client' | 'upstream', finished: boolean): PairEnd | undefined {
    const before = d.bytes;
    const failure = this.pump.move(d, other, source, sink, finished);
    if (d.bytes !== before) p.lastActive = this.now();
    // Every pipe is held by other flows: not read until the pool hands it one (woken).
    if (d.waiting) this.pipes.wait(d, p);
    if (failure === undefined) return undefined;
    const errno = errnoName(failure.errno);
    if (failure.at === 'pipe') return { reason: 'pipe', pipeErrno: errno };
    const side = failure.at === 'source' ? sourceSide : sourceSide === 'client' ? 'upstream' : 'client';
    return { reason: `${this.nameOf(side)}-${errno}` };
  }

  private nameOf(side: 'client' | 'upstream'): string {
    return side === 'client' ? 'client' : this.upstreamName;
  }
}

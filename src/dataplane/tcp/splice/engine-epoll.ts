/**
 * The epoll set of a splice engine thread (the TPROXY engine.ts and mmproxy's splice-engine.ts)
 * with the wake eventfd its owner writes after posting a message, and one turn's wait and
 * dispatch: every ready descriptor but the eventfd goes to the engine's handler; the eventfd is
 * read, and the turn says it fired (the engine is `woken`: its thread returns to Node's loop to
 * take the message).
 */
import * as C from '../../../core/net/constants.js';
import type { Epoll } from '../../../sys/epoll.js';
import type { Libc } from '../../../sys/libc.js';
import type { SocketApi } from '../../../sys/socket.js';

/** An engine's handler of one ready descriptor (its epoll events). */
export type ReadyHandler = (fd: number, events: number) => void;

export class EngineEpoll {
  readonly epoll: Epoll;
  /** Written by the owner thread after each message (EFD_NONBLOCK: the read in dispatch never blocks). */
  readonly wakeFd: number;
  private readonly u64 = Buffer.alloc(8);

  constructor(
    private readonly libc: Pick<Libc, 'eventfd' | 'read'>,
    api: Pick<SocketApi, 'epoll' | 'fail'>,
    maxEvents: number,
  ) {
    this.epoll = api.epoll(maxEvents);
    this.wakeFd = libc.eventfd(0, C.EFD_NONBLOCK | C.EFD_CLOEXEC);
    if (this.wakeFd < 0) {
      try {
        api.fail('eventfd');
      } finally {
        this.epoll.close();
      }
    }
    this.epoll.add(this.wakeFd, C.EPOLLIN);
  }

  /** Wait up to waitMs, then hand each ready descriptor to `onReady` (in the kernel's order). True: the wake eventfd fired. */
  dispatch(waitMs: number, onReady: ReadyHandler): boolean {
    const epoll = this.epoll;
    const n = epoll.wait(waitMs);
    let woken = false;
    for (let i = 0; i < n; i++) {
      const fd = epoll.readyFd(i);
      if (fd === this.wakeFd) {
        this.libc.read(this.wakeFd, this.u64, 8);
        woken = true;
        continue;
      }
      onReady(fd, epoll.readyEvents(i));
    }
    return woken;
  }
}

/**
 * The wait of a turn whose engine has deadlines of its own in accept order (headers, sniffs):
 * never past the first one (`first`, undefined when none waits), else `idleWait` (turnWait's).
 */
export function waitBefore(waitMs: number, first: { readonly deadline: number } | undefined, now: () => number, idleWait: () => number): number {
  return first ? Math.max(0, Math.min(waitMs, first.deadline - now())) : idleWait();
}

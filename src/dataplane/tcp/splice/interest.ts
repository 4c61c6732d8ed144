/**
 * epoll interest of a flow's two sockets. Level-triggered: a socket is watched for reading while
 * its direction has room (copying: nothing held; splicing: room in its pipe), no FIN came and it is
 * not waiting for a pipe, for writing while the other direction has bytes waiting for it (held or
 * in its pipe); a socket with nothing to wait for leaves the set (EPOLLHUP would be reported
 * forever otherwise).
 */
import * as C from '../../../core/net/constants.js';
import { inFlight, readable, type Direction } from './pump.js';

/** Events to watch on the socket that feeds `reads` and drains `writes`. Pure. */
export function socketInterest(reads: Direction, writes: Direction, pipeBytes: number): number {
  const reading = readable(reads, pipeBytes) ? C.EPOLLIN | C.EPOLLRDHUP : 0;
  const writing = inFlight(writes) > 0 ? C.EPOLLOUT : 0;
  return reading | writing;
}

/** The epoll calls interest changes make. */
export interface InterestSet {
  add(fd: number, events: number): void;
  modify(fd: number, events: number): void;
  remove(fd: number): void;
}

/** No interest registered. */
export const NOT_WATCHED = -1;

/**
 * Bring `fd` from `current` (NOT_WATCHED or its registered events) to `events` with at most one
 * epoll_ctl; the interest to store (NOT_WATCHED for none).
 */
export function updateInterest(epoll: InterestSet, fd: number, current: number, events: number): number {
  const wanted = events === 0 ? NOT_WATCHED : events;
  if (current === wanted) return current;
  if (wanted === NOT_WATCHED) epoll.remove(fd);
  else if (current === NOT_WATCHED) epoll.add(fd, events);
  else epoll.modify(fd, events);
  return wanted;
}

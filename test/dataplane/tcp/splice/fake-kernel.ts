// A fake of the libc calls the splice engine's pump and pipe pool make: sockets and pipes as byte
// counts, with the kernel's answers (EAGAIN when nothing can move, 0 at EOF, ECONNRESET/EPIPE
// after a reset), and a log of every call so tests can count them. Order is checked: byte i of a
// socket's inbound stream is numbered i (recv writes i % 251 into the buffer, a pipe carries the
// numbers), and a sink throws unless its byte `sent` is byte `sent` of the stream it relays.
import * as C from '../../../../src/core/net/constants.js';
import type { PipeLibc } from '../../../../src/dataplane/tcp/splice/pipe-pool.js';
import type { PumpLibc } from '../../../../src/dataplane/tcp/splice/pump.js';

const EPIPE = 32;
const EMFILE = C.EMFILE;

interface FakeSocket {
  kind: 'socket';
  /** Bytes the peer sent, waiting to be read. */
  inbound: number;
  /** Bytes read so far (the number of the next inbound byte). */
  read: number;
  /** The peer's FIN is here (after `inbound`). */
  fin: boolean;
  /** Room in the send buffer; bytes written are counted in `sent`. */
  room: number;
  /** Set: each write takes at most this much, whatever the room (acks free room between calls). */
  perCall?: number;
  sent: number;
  /** The connection was reset: reads give ECONNRESET, writes EPIPE. */
  reset: boolean;
  /** A reset behind `inbound`: once it is read, reads give ECONNRESET. */
  resetWhenDrained?: boolean;
  shutWr: boolean;
  lingerOff: boolean;
}

interface FakePipe {
  kind: 'pipe';
  end: 'r' | 'w';
  buffer: { bytes: number; capacity: number; segments: [number, number][] };
  closed: boolean;
}

export class FakeKernel implements PumpLibc, PipeLibc {
  private readonly fds = new Map<number, FakeSocket | FakePipe>();
  private next = 10;
  private lastErrno = 0;
  readonly calls: string[] = [];
  /** pipe2 fails with EMFILE while set. */
  outOfDescriptors = false;
  /** F_SETPIPE_SZ above this fails with EPERM (an unprivileged user past fs/pipe-user-pages-soft). */
  pipeSizeLimit = Infinity;

  socket(init: Partial<Omit<FakeSocket, 'kind'>> = {}): number {
    const fd = this.next++;
    this.fds.set(fd, { kind: 'socket', inbound: 0, read: 0, fin: false, room: 1 << 30, sent: 0, reset: false, shutWr: false, lingerOff: false, ...init });
    return fd;
  }

  state(fd: number): FakeSocket {
    const s = this.fds.get(fd);
    if (s?.kind !== 'socket') throw new Error(`fd ${fd} is not a fake socket`);
    return s;
  }

  /** What the pipe of end `fd` holds at most. */
  pipeCapacity(fd: number): number {
    const p = this.fds.get(fd);
    if (p?.kind !== 'pipe') throw new Error(`fd ${fd} is not a fake pipe`);
    return p.buffer.capacity;
  }

  /** Pipes not closed. */
  openPipes(): number {
    return [...this.fds.values()].filter((f) => f.kind === 'pipe' && !f.closed).length / 2;
  }

  private fail(errno: number): number {
    this.lastErrno = errno;
    return -1;
  }

  errno(): number {
    return this.lastErrno;
  }

  pipe2(fds: Buffer, flags: number): number {
    this.calls.push('pipe2');
    if (flags !== (C.O_NONBLOCK | C.O_CLOEXEC)) throw new Error('pipes must be non-blocking and close-on-exec');
    if (this.outOfDescriptors) return this.fail(EMFILE);
    const buffer = { bytes: 0, capacity: 65536, segments: [] as [number, number][] };
    const r = this.next++;
    const w = this.next++;
    this.fds.set(r, { kind: 'pipe', end: 'r', buffer, closed: false });
    this.fds.set(w, { kind: 'pipe', end: 'w', buffer, closed: false });
    fds.writeInt32LE(r, 0);
    fds.writeInt32LE(w, 4);
    return 0;
  }

  fcntl(fd: number, cmd: number, arg: number): number {
    this.calls.push('fcntl');
    const p = this.fds.get(fd);
    if (p?.kind !== 'pipe' || cmd !== C.F_SETPIPE_SZ) return this.fail(22);
    if (arg > this.pipeSizeLimit) return this.fail(1);
    p.buffer.capacity = arg;
    return arg;
  }

  close(fd: number): number {
    this.calls.push(`close ${fd}`);
    const f = this.fds.get(fd);
    if (!f || (f.kind === 'pipe' && f.closed)) return this.fail(9);
    if (f.kind === 'pipe') f.closed = true;
    else this.fds.delete(fd);
    return 0;
  }

  splice(fdIn: number, _offIn: null, fdOut: number, _offOut: null, length: number, flags: number): number {
    this.calls.push('splice');
    if ((flags & C.SPLICE_F_NONBLOCK) === 0) throw new Error('splice must not block');
    const from = this.fds.get(fdIn);
    const to = this.fds.get(fdOut);
    if (!from || !to) return this.fail(9);
    if (from.kind === 'socket' && to.kind === 'pipe' && to.end === 'w') {
      if (from.reset) return this.fail(C.ECONNRESET);
      const room = to.buffer.capacity - to.buffer.bytes;
      if (from.inbound === 0) return from.fin ? 0 : this.fail(C.EAGAIN);
      if (room === 0) return this.fail(C.EAGAIN);
      const n = Math.min(length, from.inbound, room);
      from.inbound -= n;
      to.buffer.segments.push([from.read, from.read + n]);
      from.read += n;
      to.buffer.bytes += n;
      return n;
    }
    if (from.kind === 'pipe' && from.end === 'r' && to.kind === 'socket') {
      if (to.reset || to.shutWr) return this.fail(EPIPE);
      if (from.buffer.bytes === 0) return this.fail(C.EAGAIN);
      if (to.room === 0) return this.fail(C.EAGAIN);
      const n = Math.min(length, from.buffer.bytes, to.room, to.perCall ?? Infinity);
      from.buffer.bytes -= n;
      for (let left = n; left > 0; ) {
        const segment = from.buffer.segments[0]!;
        if (segment[0] !== to.sent) throw new Error(`out of order: the sink's byte ${to.sent} is byte ${segment[0]} of the stream`);
        const take = Math.min(left, segment[1] - segment[0]);
        segment[0] += take;
        to.sent += take;
        left -= take;
        if (segment[0] === segment[1]) from.buffer.segments.shift();
      }
      to.room -= n;
      return n;
    }
    throw new Error(`splice from fd ${fdIn} to fd ${fdOut}: not socket -> pipe or pipe -> socket`);
  }

  recv(fd: number, data: Buffer, length: number, flags: number): number {
    this.calls.push('recv');
    if ((flags & C.MSG_DONTWAIT) === 0) throw new Error('recv must not block');
    const s = this.state(fd);
    if (s.reset) return this.fail(C.ECONNRESET);
    if (s.inbound === 0) return s.resetWhenDrained ? this.fail(C.ECONNRESET) : s.fin ? 0 : this.fail(C.EAGAIN);
    const n = Math.min(length, s.inbound);
    for (let i = 0; i < n; i++) data[i] = (s.read + i) % 251;
    s.inbound -= n;
    s.read += n;
    return n;
  }

  send(fd: number, data: Buffer, length: number, flags: number): number {
    this.calls.push((flags & C.MSG_MORE) !== 0 ? 'send(MSG_MORE)' : 'send');
    if ((flags & C.MSG_DONTWAIT) === 0) throw new Error('send must not block');
    const s = this.state(fd);
    if (s.reset || s.shutWr) return this.fail(EPIPE);
    if (s.room === 0) return this.fail(C.EAGAIN);
    const n = Math.min(length, s.room, s.perCall ?? Infinity);
    for (let i = 0; i < n; i++) {
      if (data[i] !== (s.sent + i) % 251) throw new Error(`out of order: the sink's byte ${s.sent + i} is not the stream's`);
    }
    s.room -= n;
    s.sent += n;
    return n;
  }

  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number {
    this.calls.push('setsockopt');
    const s = this.state(fd);
    if (level !== C.SOL_SOCKET || name !== C.SO_LINGER || length !== 8) throw new Error('only SO_LINGER is expected');
    s.lingerOff = value.readInt32LE(0) === 0;
    return 0;
  }

  shutdown(fd: number, how: number): number {
    this.calls.push('shutdown');
    if (how !== C.SHUT_WR) throw new Error('only SHUT_WR is expected');
    this.state(fd).shutWr = true;
    return 0;
  }
}

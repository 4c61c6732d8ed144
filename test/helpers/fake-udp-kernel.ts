/**
 * A stand-in for the kernel under the UDP relay loop (dataplane/udp/loop.ts), for unit tests of
 * what the loop does with datagrams in orders the real kernel produces only by chance under load:
 * the SocketApi surface the loop uses (sockets, epoll, recvmmsg/sendmmsg batches, the drain
 * receiver) over plain queues. A test puts datagrams into any socket's receive queue (`deliver`)
 * and reads what the loop sent on each socket (`sent`). No I/O.
 */
import { decodeSockaddr, encodeSockaddr, type Endpoint } from '../../src/core/net/sockaddr.js';
import type { SocketApi, SocketOptions } from '../../src/sys/socket.js';
import type { DatagramBatch, SendTarget } from '../../src/sys/datagram-batch.js';
import { EpollDatagramIo, type DatagramIo, type UdpEngineKind } from '../../src/sys/datagram-io.js';
import type { Epoll } from '../../src/sys/epoll.js';

export interface FakeDatagram {
  readonly source: Endpoint;
  /** Where it was addressed (the listener reports it as the original destination). */
  readonly destination: Endpoint;
  readonly data: Buffer;
}

export interface FakeSocket {
  readonly fd: number;
  readonly options: SocketOptions;
  bound: Endpoint | undefined;
  connected: Endpoint | undefined;
  closed: boolean;
  readonly queue: FakeDatagram[];
  /** Datagrams the loop sent on it: payload and where to (the connected peer when unnamed). */
  readonly sent: { readonly data: string; readonly to: Endpoint | undefined }[];
}

export class FakeUdpKernel {
  readonly sockets = new Map<number, FakeSocket>();
  private nextFd = 100;
  private readonly watched = new Set<number>();
  /** Set: the uring engine's ring cannot be set up (datagramIo('uring') throws this). */
  refuseUring: Error | undefined = undefined;
  /** Called once right after the next epoll_wait returns: what arrives while the loop works through its turn. */
  afterNextWait: (() => void) | undefined;

  /** A listener socket (as UdpRelay opens it), bound to `local`. */
  listener(local: Endpoint): number {
    const fd = this.open({ family: local.family, transport: 'udp', transparent: true, recvOriginalDestination: true });
    this.get(fd).bound = local;
    return fd;
  }

  deliver(fd: number, datagram: { source: Endpoint; destination: Endpoint; data: string }): void {
    this.get(fd).queue.push({ ...datagram, data: Buffer.from(datagram.data) });
  }

  /** Open sockets matching `predicate`. */
  find(predicate: (s: FakeSocket) => boolean): FakeSocket[] {
    return [...this.sockets.values()].filter((s) => !s.closed && predicate(s));
  }

  get(fd: number): FakeSocket {
    const s = this.sockets.get(fd);
    if (!s || s.closed) throw new Error(`fake kernel: fd ${fd} is not an open socket`);
    return s;
  }

  private open(options: SocketOptions): number {
    const fd = this.nextFd++;
    this.sockets.set(fd, { fd, options, bound: undefined, connected: undefined, closed: false, queue: [], sent: [] });
    return fd;
  }

  private take(fd: number): FakeDatagram | undefined {
    return this.sockets.get(fd)?.queue.shift();
  }

  private record(fd: number, data: Buffer, to: Endpoint | undefined): void {
    const s = this.get(fd);
    s.sent.push({ data: data.toString('utf8'), to: to ?? s.connected });
  }

  /** The SocketApi the loop is given. */
  api(): SocketApi {
    const api = {
      open: (options: SocketOptions) => this.open(options),
      bind: (fd: number, endpoint: Endpoint) => {
        this.get(fd).bound = endpoint;
      },
      connect: (fd: number, endpoint: Endpoint) => {
        const s = this.get(fd);
        s.connected = endpoint;
        s.bound ??= { family: endpoint.family, address: endpoint.family === 4 ? '192.0.2.1' : '2001:db8::1', port: 40_000 + fd };
        return 'connected' as const;
      },
      close: (fd: number) => {
        this.get(fd).closed = true;
        this.watched.delete(fd);
      },
      hasQueuedDatagram: (fd: number) => this.get(fd).queue.length > 0,
      localEndpoint: (fd: number) => this.get(fd).bound ?? { family: 4 as const, address: '0.0.0.0', port: 0 },
      sendDatagram: (fd: number, data: Buffer, length: number, to: Buffer | null) => {
        this.record(fd, data.subarray(0, length), to ? decodeSockaddr(to) : undefined);
        return length;
      },
      rawUdpSender: () => {
        throw new Error('fake kernel: no raw sockets');
      },
      receiver: (maxDatagramBytes: number) => {
        const data = Buffer.alloc(maxDatagramBytes);
        return {
          data,
          receive: (fd: number) => {
            const d = this.take(fd);
            if (!d) return null;
            d.data.copy(data);
            return { length: d.data.length, truncated: false, source: d.source, originalDestination: d.destination };
          },
        };
      },
      epoll: () => {
        let ready: number[] = [];
        return {
          add: (fd: number) => void this.watched.add(fd),
          modify: () => undefined,
          remove: (fd: number) => void this.watched.delete(fd),
          wait: () => {
            ready = [...this.watched].filter((fd) => (this.sockets.get(fd)?.queue.length ?? 0) > 0);
            const after = this.afterNextWait;
            this.afterNextWait = undefined;
            after?.();
            return ready.length;
          },
          readyFd: (i: number) => ready[i] ?? -1,
          readyEvents: () => 1,
          close: () => this.watched.clear(),
        };
      },
      batch: (capacity: number) => this.batch(capacity),
      datagramIo: (engine: UdpEngineKind, capacity: number) => {
        if (engine === 'uring' && this.refuseUring) throw this.refuseUring;
        return engine === 'uring' ? this.uringIo(capacity, api.epoll() as unknown as Epoll) : new EpollDatagramIo(this.batch(capacity) as DatagramBatch, api.epoll() as unknown as Epoll);
      },
    };
    return api as unknown as SocketApi;
  }

  /** Sends the uring engine queued: they happen when the loop next enters the kernel (or closes a socket). */
  private readonly submissions: { fd: number; data: Buffer; to: Endpoint | undefined }[] = [];

  /** What the next io_uring_enter would do with the queued sends: they are sent now. */
  submitQueued(): void {
    for (const q of this.submissions.splice(0)) {
      if (this.sockets.get(q.fd)?.closed) continue;
      const errno = this.refused.get(q.fd);
      if (errno !== undefined) this.sendFailures.push({ fd: q.fd, errno });
      else this.record(q.fd, q.data, q.to);
    }
  }

  /** Sends on `fd` fail with `errno` from now on (the epoll engine sees it at once, the uring engine at its next wait). */
  refuseSends(fd: number, errno: number): void {
    this.refused.set(fd, errno);
  }

  private readonly refused = new Map<number, number>();
  private readonly sendFailures: { fd: number; errno: number }[] = [];

  /**
   * The uring engine over these queues: a watched socket's receive is armed on the next wait; a
   * wait submits the queued sends, then takes every datagram queued on an armed socket (a
   * multishot receive takes them as they come); sends are queued until the next wait.
   */
  private uringIo(capacity: number, epoll: Epoll): DatagramIo {
    const batch = this.batch(Math.max(capacity, 1024)) as DatagramBatch & { load(taken: FakeDatagram[]): number };
    const armed = new Set<number>();
    const toArm = new Set<number>();
    const pending = new Map<number, FakeDatagram[]>();
    let ready: number[] = [];
    const io = {
      lengths: batch.lengths,
      epoll,
      onSendFailed: (_fd: number, _errno: number, _count: number): void => undefined,
      waits: 0,
      watch: (fd: number) => void toArm.add(fd),
      forget: (fd: number) => {
        this.submitQueued();
        armed.delete(fd);
        toArm.delete(fd);
        pending.delete(fd);
      },
      wait: () => {
        io.waits++;
        this.submitQueued();
        for (const f of this.sendFailures.splice(0)) io.onSendFailed(f.fd, f.errno, 1);
        for (const fd of toArm) armed.add(fd);
        toArm.clear();
        for (const fd of armed) {
          const queue = this.sockets.get(fd)?.queue ?? [];
          if (queue.length === 0) continue;
          pending.set(fd, [...(pending.get(fd) ?? []), ...queue.splice(0)]);
        }
        ready = [...pending.keys()];
        const after = this.afterNextWait;
        this.afterNextWait = undefined;
        after?.();
        return ready.length;
      },
      readyFd: (i: number) => ready[i] ?? -1,
      readyEvents: () => 1,
      receive: (fd: number) => {
        const taken = pending.get(fd) ?? [];
        pending.delete(fd);
        return batch.load(taken);
      },
      slot: (i: number) => batch.slot(i),
      truncated: () => false,
      source: (i: number) => batch.source(i),
      sourceIs: (i: number, sockaddr: Buffer) => batch.sourceIs(i, sockaddr),
      originalDestination: (i: number) => batch.originalDestination(i),
      dscp: () => undefined,
      pin: (endpoint: Endpoint) => batch.pin(endpoint),
      send: (fd: number, from: number, count: number, to: SendTarget) => {
        for (let i = from; i < from + count; i++) {
          this.submissions.push({ fd, data: Buffer.from(batch.slot(i)), to: to === null ? undefined : to === 'source' ? batch.source(i) : decodeSockaddr(to.sockaddr) });
        }
        return count;
      },
      close: () => {
        this.submitQueued();
        armed.clear();
      },
    };
    return io;
  }

  private batch(capacity: number): unknown {
    const lengths = new Int32Array(capacity);
    const slots: FakeDatagram[] = [];
    return {
      capacity,
      lengths,
      load: (taken: FakeDatagram[]) => {
        slots.length = 0;
        for (const d of taken) {
          lengths[slots.length] = d.data.length;
          slots.push(d);
        }
        return slots.length;
      },
      receive: (fd: number) => {
        slots.length = 0;
        while (slots.length < capacity) {
          const d = this.take(fd);
          if (!d) break;
          lengths[slots.length] = d.data.length;
          slots.push(d);
        }
        return slots.length;
      },
      truncated: () => false,
      source: (i: number) => slots[i]!.source,
      sourceKey: (i: number) => `${slots[i]!.source.address}|${slots[i]!.source.port}`,
      sourceIs: (i: number, sockaddr: Buffer) => encodeSockaddr(slots[i]!.source).equals(sockaddr),
      originalDestination: (i: number) => slots[i]?.destination,
      dscp: () => undefined,
      slot: (i: number) => slots[i]!.data.subarray(0, lengths[i]),
      pin: (endpoint: Endpoint) => ({ sockaddr: encodeSockaddr(endpoint), address: 0n }),
      send: (fd: number, from: number, count: number, to: null | 'source' | { sockaddr: Buffer }) => {
        const errno = this.refused.get(fd);
        if (errno !== undefined) return -errno;
        for (let i = from; i < from + count; i++) this.record(fd, slots[i]!.data, to === null ? undefined : to === 'source' ? slots[i]!.source : decodeSockaddr(to.sockaddr));
        return count;
      },
    };
  }
}

/**
 * The UDP relay loop, run in a worker thread so TCP and control work never stall it.
 *
 * For each (client, original destination) pair a session holds:
 *   - an upstream socket (SO_MARK; in transparent mode IP_TRANSPARENT and bound to the client),
 *     connected to the original destination;
 *   - a reply socket (IP_TRANSPARENT, SO_REUSEADDR) bound to the original destination and connected
 *     to the client, so replies carry the original destination as source address AND port, and the
 *     kernel delivers the client's later datagrams of the flow straight to it.
 * Between bind() and connect() a reply socket may receive datagrams of other clients to the same
 * destination: they are drained right after connect() and handed to their own sessions.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TproxyError } from '../../core/errors.js';
import { POLLIN } from '../../core/net/constants.js';
import { sameEndpoint, type Endpoint } from '../../core/net/sockaddr.js';
import { SocketApi } from '../../sys/socket.js';
import type { ProxyEvent } from '../events.js';
import { localAddressCache } from '../local-addresses.js';
import type { UdpWorkerData, UdpWorkerMessage } from './protocol.js';
import { SessionTable, sessionKey } from './session-table.js';

interface Session {
  readonly key: string;
  readonly id: number;
  readonly client: Endpoint;
  readonly destination: Endpoint;
  readonly upstreamFd: number;
  readonly replyFd: number;
  lastActiveMs: number;
  datagramsFromClient: number;
  datagramsFromServer: number;
  bytesFromClient: number;
  bytesFromServer: number;
}

type FdOwner = { readonly kind: 'listener' } | { readonly kind: 'upstream'; readonly session: Session } | { readonly kind: 'reply'; readonly session: Session };

const BATCH = 64;

class UdpLoop {
  private readonly api = new SocketApi();
  private readonly rx: ReturnType<SocketApi['receiver']>;
  private readonly drainRx: ReturnType<SocketApi['receiver']>;
  private readonly poller = this.api.poller(64);
  private readonly sessions = new SessionTable<Session>();
  private readonly owners = new Map<number, FdOwner>();
  private readonly stopFlag: Int32Array;
  private readonly localAddresses = localAddressCache();
  private pollDirty = true;
  private nextId = 1;
  private events: ProxyEvent[] = [];

  constructor(private readonly config: UdpWorkerData) {
    this.rx = this.api.receiver(config.maxDatagramBytes);
    this.drainRx = this.api.receiver(config.maxDatagramBytes);
    this.stopFlag = new Int32Array(config.control);
    for (const l of config.listeners) this.owners.set(l.fd, { kind: 'listener' });
  }

  private emit(event: ProxyEvent): void {
    this.events.push(event);
  }

  private flush(): void {
    if (this.events.length === 0) return;
    post({ kind: 'events', events: this.events });
    this.events = [];
  }

  tick = (): void => {
    try {
      if (Atomics.load(this.stopFlag, 0) !== 0) {
        this.shutdown();
        return;
      }
      if (this.pollDirty) {
        const fds = [...this.owners.keys()];
        this.poller.set(fds, fds.map(() => POLLIN));
        this.pollDirty = false;
      }
      for (const { fd } of this.poller.wait(50)) {
        const owner = this.owners.get(fd);
        if (!owner) continue;
        if (owner.kind === 'listener') this.readListener(fd);
        else if (owner.kind === 'upstream') this.readUpstream(owner.session);
        else this.readReply(owner.session);
      }
      const now = Date.now();
      for (const s of this.sessions.expired(now, this.config.idleTimeoutMs)) this.close(s, 'idle-timeout');
      this.flush();
      setImmediate(this.tick);
    } catch (error) {
      const e = error instanceof TproxyError ? error : new TproxyError('ERR_SYSCALL', String(error));
      this.flush();
      post({ kind: 'fatal', message: e.message, code: e.code });
    }
  };

  private readListener(fd: number): void {
    for (let i = 0; i < BATCH; i++) {
      const d = this.rx.receive(fd);
      if (!d) return;
      if (!d.originalDestination) {
        this.emit({ type: 'udp.drop', reason: 'no-original-destination', source: d.source });
        continue;
      }
      if (d.truncated) {
        this.emit({ type: 'udp.drop', reason: 'truncated', source: d.source });
        continue;
      }
      this.fromClient(d.source, d.originalDestination, this.rx.data, d.length);
    }
  }

  private fromClient(client: Endpoint, destination: Endpoint, data: Buffer, length: number): void {
    let session = this.sessions.get(sessionKey(client, destination));
    if (!session) {
      if (this.localAddresses().has(destination.address)) {
        this.emit({ type: 'udp.drop', reason: 'loop', source: client });
        return;
      }
      // Copy: opening the session drains the reply socket, which reuses receive buffers.
      const payload = Buffer.from(data.subarray(0, length));
      const pending: { client: Endpoint; data: Buffer }[] = [];
      session = this.open(client, destination, pending);
      if (!session) return;
      this.forwardUp(session, payload, payload.length);
      for (const p of pending) this.fromClient(p.client, destination, p.data, p.data.length);
      return;
    }
    this.forwardUp(session, data, length);
  }

  private forwardUp(session: Session, data: Buffer, length: number): void {
    this.sessions.touch(session, Date.now());
    session.datagramsFromClient++;
    session.bytesFromClient += length;
    try {
      if (this.api.send(session.upstreamFd, data, length) === null) this.emit({ type: 'udp.drop', reason: 'upstream-busy', source: session.client });
    } catch (error) {
      this.close(session, errnoOf(error));
    }
  }

  private open(client: Endpoint, destination: Endpoint, pending: { client: Endpoint; data: Buffer }[]): Session | undefined {
    if (this.sessions.size >= this.config.maxSessions) {
      const oldest = this.sessions.oldest();
      if (oldest) this.close(oldest, 'evicted');
    }
    const { family } = destination;
    const transparent = this.config.upstream === 'transparent';
    const fds: number[] = [];
    try {
      const upstreamFd = this.api.open({ family, transport: 'udp', mark: this.config.upstreamMark, transparent, reuseAddress: transparent });
      fds.push(upstreamFd);
      if (transparent) this.api.bind(upstreamFd, client);
      this.api.connect(upstreamFd, destination);
      const replyFd = this.api.open({ family, transport: 'udp', transparent: true, reuseAddress: true });
      fds.push(replyFd);
      this.api.bind(replyFd, destination);
      this.api.connect(replyFd, client);
      const session: Session = {
        key: sessionKey(client, destination),
        id: this.nextId++,
        client,
        destination,
        upstreamFd,
        replyFd,
        lastActiveMs: Date.now(),
        datagramsFromClient: 0,
        datagramsFromServer: 0,
        bytesFromClient: 0,
        bytesFromServer: 0,
      };
      this.sessions.add(session);
      this.owners.set(upstreamFd, { kind: 'upstream', session });
      this.owners.set(replyFd, { kind: 'reply', session });
      this.pollDirty = true;
      this.emit({ type: 'udp.session.open', id: session.id, client, originalDestination: destination, upstreamLocal: this.api.localEndpoint(upstreamFd) });
      // Datagrams that reached the reply socket between bind() and connect(): each to its own flow.
      for (let i = 0; i < 1024; i++) {
        const d = this.drainRx.receive(replyFd);
        if (!d) break;
        const copy = Buffer.from(this.drainRx.data.subarray(0, d.length));
        if (sameEndpoint(d.source, client)) this.forwardUp(session, copy, copy.length);
        else pending.push({ client: d.source, data: copy });
      }
      return session;
    } catch (error) {
      for (const fd of fds) this.api.close(fd);
      this.emit({ type: 'udp.drop', reason: `session-open-${errnoOf(error)}`, source: client });
      return undefined;
    }
  }

  private readUpstream(session: Session): void {
    for (let i = 0; i < BATCH; i++) {
      let d;
      try {
        d = this.rx.receive(session.upstreamFd);
      } catch (error) {
        this.close(session, errnoOf(error));
        return;
      }
      if (!d) return;
      this.sessions.touch(session, Date.now());
      session.datagramsFromServer++;
      session.bytesFromServer += d.length;
      try {
        this.api.send(session.replyFd, this.rx.data, d.length);
      } catch (error) {
        this.close(session, errnoOf(error));
        return;
      }
    }
  }

  private readReply(session: Session): void {
    for (let i = 0; i < BATCH; i++) {
      let d;
      try {
        d = this.rx.receive(session.replyFd);
      } catch (error) {
        this.close(session, errnoOf(error));
        return;
      }
      if (!d) return;
      if (!sameEndpoint(d.source, session.client)) {
        this.emit({ type: 'udp.drop', reason: 'reply-socket-foreign-source', source: d.source });
        continue;
      }
      this.forwardUp(session, this.rx.data, d.length);
    }
  }

  private close(session: Session, reason: string): void {
    if (this.sessions.get(session.key) !== session) return;
    this.sessions.delete(session);
    for (const fd of [session.upstreamFd, session.replyFd]) {
      this.owners.delete(fd);
      try {
        this.api.close(fd);
      } catch {
        // already closed
      }
    }
    this.pollDirty = true;
    this.emit({
      type: 'udp.session.close',
      id: session.id,
      client: session.client,
      originalDestination: session.destination,
      datagramsFromClient: session.datagramsFromClient,
      datagramsFromServer: session.datagramsFromServer,
      bytesFromClient: session.bytesFromClient,
      bytesFromServer: session.bytesFromServer,
      reason,
    });
  }

  private shutdown(): void {
    for (const s of [...this.sessions.values()]) this.close(s, 'stopped');
    this.flush();
    post({ kind: 'stopped' });
  }
}

function errnoOf(error: unknown): string {
  if (error instanceof TproxyError && typeof error.details.errno === 'string') return error.details.errno;
  return 'error';
}

function post(message: UdpWorkerMessage): void {
  parentPort?.postMessage(message);
}

const loop = new UdpLoop(workerData as UdpWorkerData);
post({ kind: 'ready' });
setImmediate(loop.tick);


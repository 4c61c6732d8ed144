/**
 * The outgoing socket of a pair and its connect through the ring, shared by the uring engines (the
 * TPROXY one's upstream socket, engine.ts; mmproxy's backend socket, ../../mmproxy/uring-engine.ts).
 *
 * Where the kernel runs socket commands on the ring (ring-probe.ts: SOCKET_URING_OP_SETSOCKOPT
 * 6.7, IORING_OP_BIND 6.11), the socket's options (upstream-setup.ts), its bind and its connect
 * (linked to the connect timeout) go with the next submission: socket() is the only synchronous
 * call (IORING_OP_SOCKET cost each new connection a loop turn before its options could be queued,
 * and measured slower). The options are not linked: they run inline, in order, at submission, and
 * post a CQE only when one fails (the pair ends once its connect is done). Links would cost a loop
 * turn per step: with DEFER_TASKRUN the kernel issues each next link as task work, which an
 * io_uring_enter that already has completions to return runs one step of. Only the bind is linked
 * to the connect, so a client whose port is taken here is never connected from another source: a
 * failed bind ends the chain, with no CQE for the connect (the kernel posts none for the links
 * cancelled after an SQE with IOSQE_CQE_SKIP_SUCCESS fails); the client's port taken (EADDRINUSE),
 * a new socket bound to the client's address with a port the kernel picks at connect.
 *
 * Elsewhere the engine opens the socket with synchronous calls and only its connect goes through
 * the ring (connectOpened).
 *
 * Operation kinds 2, 3, 11, 14, 15 and 20 in user_data are this file's.
 */
import { errnoName } from '../../../core/errno.js';
import * as C from '../../../core/net/constants.js';
import * as U from '../../../core/net/io-uring.js';
import type { IoUring } from '../../../sys/io-uring.js';
import type { Libc } from '../../../sys/libc.js';
import type { SocketApi } from '../../../sys/socket.js';
import type { RingOption, UpstreamSetup } from './upstream-setup.js';

export const ConnectOp = {
  Connect: 2,
  ConnectTimeout: 3,
  /** A socket option of the setup: a CQE only when it fails (CQE_SKIP_SUCCESS). */
  Setup: 11,
  /** The bind of the setup chain: a CQE only when it fails. */
  Bind: 14,
  /** The connect of a second setup chain (the client's port was taken): a late CQE of the first is told apart. */
  ConnectAgain: 15,
  /** The cancel of a chain's connect (its pair ended). */
  Cancel: 20,
} as const;

/** Where optionValues keeps each constant value (SO_LINGER values are struct linger, 8 bytes). */
const OPTION_AT = { one: 0, mark: 4, ttl: 8, linger: 16, zero: 24 } as const;
const OPTION_VALUES_BYTES = 32;
/** Longest linked chain queued at once: the socket's options, bind, connect and its timeout. */
const CHAIN_ROOM = 16;

/** What a pair carries for its outgoing socket. */
export interface RingConnecting {
  readonly id: number;
  /** -1 while there is none. */
  ufd: number;
  pending: number;
  /** The sockaddr connected to: the kernel reads it until the connect completes. */
  readonly sockaddr: Buffer | undefined;
  /** The DSCP the socket gets (undefined: none set). */
  readonly dscp: number | undefined;
  /** The client's port was taken here (or unavailable toward this destination): the kernel picks one. */
  portTaken: boolean;
  /** Ring setup: the DSCP value this pair's chain points the kernel at (its bind address is in the ring's own slots). */
  setupValues: Buffer | undefined;
  /** Ring setup: the chain (options, bind, connect) is in flight; its connect's CQE ends it. */
  chain: boolean;
  /** Ring setup: the errno of the first option that failed (0: none). */
  setupErrno: number;
}

export interface RingConnectorOptions<F> {
  readonly mark: number;
  readonly ttl: number | undefined;
  readonly connectTimeoutMs: number;
  /** The setup of the pair's socket (its `portTaken` says which bind). */
  readonly setup: (pair: F) => UpstreamSetup;
  /** The connect completed: res 0 connected, else its -errno (ECANCELED or ETIME: the timeout). */
  readonly connected: (pair: F, res: number) => void;
  /** No socket to connect (socket(), an option, or the bind failed: that errno's name); the engine drops the pair. */
  readonly failed: (pair: F, errno: string) => void;
  /** The client's port was taken at the bind: once more from a port the kernel picks. */
  readonly portFallback?: (pair: F) => void;
}

export class RingConnector<F extends RingConnecting> {
  /**
   * Sockets of pairs ended while their setup chain was in flight, by pair id: closed when the
   * chain's end completes. The kernel issues the chain's later steps after the submission and
   * looks the descriptor up then: closed earlier, its number could be a new socket's by then, and
   * the chain would set options on it and connect it.
   */
  private readonly orphans = new Map<number, number>();
  private readonly connectTimeout = Buffer.alloc(16);
  /** The connect's linked timeout (made once). */
  private readonly timeout: { readonly at: number; readonly kind: number };
  /** Constant option values the ring's setsockopt reads (ints; SO_LINGER struct). */
  private readonly optionValues = Buffer.alloc(OPTION_VALUES_BYTES);
  /** Addresses as numbers (exact below 2^53): no BigInt per SQE. */
  private readonly optionAddresses: Readonly<Record<'one' | 'zero' | 'mark' | 'ttl' | 'linger', number>>;
  /** The last sockaddr connected to and its address (a fixed backend's is the same Buffer for every pair: one lookup). */
  private lastSockaddr: Buffer | undefined;
  private lastSockaddrAddress = 0;

  constructor(
    private readonly ring: IoUring,
    private readonly libc: Libc,
    private readonly api: SocketApi,
    private readonly options: RingConnectorOptions<F>,
  ) {
    const ms = options.connectTimeoutMs;
    this.connectTimeout.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
    this.connectTimeout.writeBigInt64LE(BigInt((ms % 1000) * 1_000_000), 8);
    this.timeout = { at: Number(libc.address(this.connectTimeout)), kind: ConnectOp.ConnectTimeout };
    this.optionValues.writeInt32LE(1, OPTION_AT.one);
    this.optionValues.writeUInt32LE(options.mark >>> 0, OPTION_AT.mark);
    this.optionValues.writeInt32LE(options.ttl ?? 0, OPTION_AT.ttl);
    this.optionValues.writeInt32LE(1, OPTION_AT.linger); // { l_onoff 1, l_linger 0 }
    const base = Number(libc.address(this.optionValues));
    this.optionAddresses = { one: base + OPTION_AT.one, zero: base + OPTION_AT.zero, mark: base + OPTION_AT.mark, ttl: base + OPTION_AT.ttl, linger: base + OPTION_AT.linger };
  }

  /** Sockets of ended pairs still waiting for their chain's end. */
  get orphaned(): number {
    return this.orphans.size;
  }

  /** The socket, its options, bind and connect (with its timeout), all with the next submission. */
  open(pair: F): void {
    const setup = this.options.setup(pair);
    pair.ufd = this.libc.socket(setup.domain, C.SOCK_STREAM | C.SOCK_NONBLOCK | C.SOCK_CLOEXEC, 0);
    if (pair.ufd < 0) {
      pair.ufd = -1;
      this.options.failed(pair, errnoName(this.libc.errno()));
      return;
    }
    if (pair.dscp !== undefined && !pair.setupValues) {
      pair.setupValues = Buffer.alloc(4);
      pair.setupValues.writeInt32LE(pair.dscp << 2, 0);
    }
    this.ring.reserve(CHAIN_ROOM);
    pair.setupErrno = 0;
    const options = setup.options;
    for (let i = 0; i < options.length; i++) {
      const option = options[i]!;
      this.ring.setsockopt(pair.ufd, option.level, option.name, this.optionAt(pair, option.value), option.value === 'linger' ? 8 : 4, ConnectOp.Setup, pair.id, U.IOSQE_CQE_SKIP_SUCCESS);
    }
    if (setup.bind) {
      this.ring.bindEndpoint(pair.ufd, setup.bind, ConnectOp.Bind, pair.id, U.IOSQE_IO_LINK | U.IOSQE_CQE_SKIP_SUCCESS);
    }
    pair.chain = true;
    this.connectOpened(pair);
  }

  /** The connect (with its timeout) of a socket the pair has (opened synchronously, or by open). */
  connectOpened(pair: F): void {
    const sockaddr = pair.sockaddr!;
    if (sockaddr !== this.lastSockaddr) {
      this.lastSockaddr = sockaddr;
      this.lastSockaddrAddress = Number(this.libc.address(sockaddr));
    }
    pair.pending++;
    this.ring.connect(pair.ufd, this.lastSockaddrAddress, sockaddr.length, this.connectKind(pair), pair.id, this.timeout);
  }

  /**
   * Once more from the client's address with a port the kernel picks: the socket so far closed
   * (never connected, or reset: SO_LINGER {1, 0} came with its setup), and with `ring` a new one.
   */
  again(pair: F, ring: boolean): void {
    if (pair.ufd >= 0) this.libc.close(pair.ufd);
    pair.ufd = -1;
    pair.portTaken = true;
    if (ring) this.open(pair);
  }

  private connectKind(pair: F): number {
    return pair.portTaken ? ConnectOp.ConnectAgain : ConnectOp.Connect;
  }

  /** Kinds whose CQEs need nothing (a connect's timeout, a cancel). */
  static quiet(kind: number): boolean {
    return kind === ConnectOp.ConnectTimeout || kind === ConnectOp.Cancel;
  }

  /**
   * A CQE of this file's kinds for a live pair (`pending` not yet counted down: this does it for
   * the connect). False: not one of them.
   */
  complete(kind: number, pair: F, res: number): boolean {
    switch (kind) {
      case ConnectOp.Setup:
        // A failed option: the pair ends when its chain does (the connect, or a failed bind).
        if (pair.chain && pair.setupErrno === 0) pair.setupErrno = -res;
        return true;
      case ConnectOp.Bind:
        if (pair.chain) this.onBindFailed(pair, -res);
        return true;
      case ConnectOp.Connect:
      case ConnectOp.ConnectAgain:
        // A late CQE of a first chain whose bind failed, should a kernel post them: onBindFailed ended it.
        if (kind === ConnectOp.Connect && pair.portTaken) return true;
        pair.pending--;
        pair.chain = false;
        if (pair.setupErrno !== 0) this.options.failed(pair, errnoName(pair.setupErrno));
        else this.options.connected(pair, res);
        return true;
      default:
        return false;
    }
  }

  /** A CQE for a pair gone: the socket kept for its chain is closed at the chain's end. */
  gone(kind: number, id: number): void {
    if (kind !== ConnectOp.Connect && kind !== ConnectOp.ConnectAgain && kind !== ConnectOp.Bind) return;
    const orphan = this.orphans.get(id);
    if (orphan === undefined) return;
    this.orphans.delete(id);
    this.api.resetClose(orphan);
  }

  /**
   * The pair ends: true when its socket is left to this file (its chain in flight: cancelled, and
   * the socket closed at the chain's end), false when the engine closes it with the pair's others.
   */
  release(pair: F): boolean {
    if (!pair.chain) return false;
    this.orphans.set(pair.id, pair.ufd);
    this.ring.cancel(this.connectKind(pair), pair.id, ConnectOp.Cancel);
    return true;
  }

  /** The ring is closed (its operations gone): the sockets left waiting for their chains are closed now. */
  closeOrphans(): void {
    for (const fd of this.orphans.values()) this.api.resetClose(fd);
    this.orphans.clear();
  }

  /**
   * The bind failed (its CQE): the chain's end, the connect linked to it cancelled without a CQE
   * (so the connect counted in `pending` ends here).
   */
  private onBindFailed(pair: F, errno: number): void {
    pair.chain = false;
    pair.pending--;
    if (pair.setupErrno === 0 && errno === C.EADDRINUSE && !pair.portTaken) {
      this.options.portFallback?.(pair);
      this.again(pair, true);
      return;
    }
    this.options.failed(pair, errnoName(pair.setupErrno !== 0 ? pair.setupErrno : errno));
  }

  /** Where the kernel reads the option's value (its length: OPTION_LENGTH). */
  private optionAt(pair: F, value: RingOption['value']): bigint | number {
    switch (value) {
      case 'one':
        return this.optionAddresses.one;
      case 'zero':
        return this.optionAddresses.zero;
      case 'mark':
        return this.optionAddresses.mark;
      case 'ttl':
        return this.optionAddresses.ttl;
      case 'linger':
        return this.optionAddresses.linger;
      case 'dscp':
        return this.libc.address(pair.setupValues ?? this.optionValues);
    }
  }
}

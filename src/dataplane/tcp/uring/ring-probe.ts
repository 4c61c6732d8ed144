/**
 * Whether the kernel runs socket commands on the ring (SOCKET_URING_OP_SETSOCKOPT, Linux 6.7; and
 * IORING_OP_BIND, 6.11, when asked): the probe lists the opcodes, and one setsockopt through the
 * ring on a scratch socket proves the socket command. Run on a fresh ring, before anything else is
 * queued on it. Shared by the uring engines (engine.ts, ../../mmproxy/uring-engine.ts).
 */
import { errnoName } from '../../../core/errno.js';
import * as C from '../../../core/net/constants.js';
import * as U from '../../../core/net/io-uring.js';
import type { IoUring } from '../../../sys/io-uring.js';
import type { Libc } from '../../../sys/libc.js';
import type { SocketApi } from '../../../sys/socket.js';

/**
 * `sync`: open upstream sockets with synchronous calls even where the ring could (tests use it to
 * run the fallback of kernels before 6.11 on this one).
 */
export const URING_SETUP_ENV = 'TPROXY_URING_SOCKET_SETUP';

/** What the kernel lets the engine do through the ring instead of with synchronous calls. */
export interface RingSetupSupport {
  /** setsockopt (and bind, when probed for it) of sockets, and the setsockopt/close of a FIN or an end. */
  readonly sockets: boolean;
  readonly why: string;
}

export function probeRingSockets(ring: IoUring, libc: Libc, api: SocketApi, options: { readonly bind: boolean; readonly kind: number }): RingSetupSupport {
  if (process.env[URING_SETUP_ENV] === 'sync') return { sockets: false, why: `${URING_SETUP_ENV}=sync` };
  const ops = ring.supportedOpcodes();
  const missing = [[U.IORING_OP_URING_CMD, 'IORING_OP_URING_CMD'] as const, ...(options.bind ? [[U.IORING_OP_BIND, 'IORING_OP_BIND'] as const] : [])].filter(([op]) => !ops.has(op));
  if (missing.length > 0) return { sockets: false, why: `the kernel lacks ${missing.map(([, name]) => name).join(', ')}` };
  const fd = libc.socket(C.AF_INET, C.SOCK_STREAM | C.SOCK_CLOEXEC, 0);
  if (fd < 0) api.fail('socket(AF_INET, SOCK_STREAM)');
  const one = Buffer.alloc(4);
  one.writeInt32LE(1, 0);
  try {
    ring.setsockopt(fd, C.IPPROTO_TCP, C.TCP_NODELAY, libc.address(one), 4, options.kind, 0);
    ring.submit(1, 1000);
    let res: number | undefined;
    while (ring.next()) if (ring.completion.kind === options.kind) res = ring.completion.res;
    if (res === 0) return { sockets: true, why: options.bind ? 'setsockopt and bind run on the ring' : 'setsockopt and close run on the ring' };
    return { sockets: false, why: `setsockopt through the ring (SOCKET_URING_OP_SETSOCKOPT, Linux 6.7) failed with ${res === undefined ? 'no completion' : errnoName(-res)}` };
  } finally {
    libc.close(fd);
  }
}

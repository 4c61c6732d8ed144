// Connected TCP socket pairs on loopback as raw descriptors, for tests that drive an io_uring
// directly (the ring relay, the ring connector): one end connects, the other is accepted.
import * as C from '../../src/core/net/constants.js';
import type { Endpoint } from '../../src/core/net/sockaddr.js';
import type { SocketApi } from '../../src/sys/socket.js';
import type { Libc } from '../../src/sys/libc.js';

/** A listening socket on 127.0.0.1 (a port the kernel picks). */
export function loopbackListener(api: SocketApi): { readonly fd: number; readonly endpoint: Endpoint } {
  const fd = api.open({ family: 4, transport: 'tcp', nonBlocking: false });
  api.bind(fd, { family: 4, address: '127.0.0.1', port: 0 });
  api.listen(fd, 16);
  return { fd, endpoint: api.localEndpoint(fd) };
}

/** Two connected non-blocking sockets: [the connecting end, the accepted end]. */
export function tcpPair(api: SocketApi, libc: Libc): [number, number] {
  const listener = loopbackListener(api);
  try {
    const a = api.open({ family: 4, transport: 'tcp' });
    api.connect(a, listener.endpoint);
    // The handshake on loopback is done by the time accept() (blocking) returns.
    const b = libc.accept4(listener.fd, null, null, C.SOCK_NONBLOCK | C.SOCK_CLOEXEC);
    if (b < 0) api.fail('accept4');
    return [a, b];
  } finally {
    libc.close(listener.fd);
  }
}

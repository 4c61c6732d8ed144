/**
 * The backend socket of an mmproxy flow, the same on both engines: from the client's address and
 * port the PROXY header names (IP_TRANSPARENT binds an address that is not this host's, one no
 * interface has included: the kernel's non-local bind takes transparent sockets as it takes
 * IP_FREEBIND ones, so that option would be a call per connection for nothing), or from this host
 * for a health check; SO_MARK so the policy rule brings the backend's replies back to it.
 * Non-blocking, bound, not connected.
 */
import { TproxyError } from '../../core/errors.js';
import type { Family } from '../../core/net/constants.js';
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { SocketApi } from '../../sys/socket.js';

/**
 * Throws TproxyError (with the errno) and leaves no descriptor behind. `anyPort`: from the client's
 * address with a port the kernel picks at connect (its own port failed: see below).
 */
export function openBackendSocket(sockets: SocketApi, mark: number, family: Family, from: Endpoint | undefined, anyPort = false): number {
  if (!from) return sockets.open({ family, transport: 'tcp', mark });
  if (!anyPort) {
    const fd = sockets.open({ family, transport: 'tcp', mark, transparent: true, reuseAddress: true });
    try {
      sockets.bind(fd, from);
      return fd;
    } catch (error) {
      sockets.close(fd);
      if (!(error instanceof TproxyError && error.code === 'ERR_ADDRESS_IN_USE')) throw error;
    }
  }
  // The client's port is in use here (the balancer reused it toward another backend): keep the address.
  const fd = sockets.open({ family, transport: 'tcp', mark, transparent: true, bindAddressNoPort: true });
  try {
    sockets.bind(fd, { ...from, port: 0 });
    return fd;
  } catch (error) {
    sockets.close(fd);
    throw error;
  }
}

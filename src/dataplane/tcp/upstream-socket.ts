/**
 * The upstream socket of a TCP flow, opened the same way by every engine (stream and splice):
 * SO_MARK so our own traffic is never intercepted again, the flow's DSCP and the TTL before the
 * SYN, and SO_LINGER {1, 0} so a crash resets the server (cleared once our FIN is sent).
 *
 * Where it connects from, by outbound: `socks5`/`http` and `direct` from this host's address;
 * `transparent` from the client's own address and port (IP_TRANSPARENT), so the server sees the
 * client. When that port is taken here (another flow of the same client, or one of our TIME_WAIT
 * sockets), the client's address with a port the kernel picks at connect (IP_BIND_ADDRESS_NO_PORT).
 */
import { TproxyError } from '../../core/errors.js';
import type { Endpoint } from '../../core/net/sockaddr.js';
import type { Outbound } from '../../core/route/outbound.js';
import type { SocketApi, SocketOptions } from '../../sys/socket.js';

export interface UpstreamSocketSettings {
  readonly upstreamMark: number;
  /** IP_TTL / IPV6_UNICAST_HOPS of the packets sent upstream; absent: the kernel's. */
  readonly ttl: number | undefined;
}

export type ConnectingOutbound = Exclude<Outbound, { kind: 'reject' }>;

/**
 * A non-blocking upstream socket, bound but not connected. `onPortFallback` is called when the
 * client's port was taken and the kernel picks one. Throws TproxyError (with the errno) and leaves
 * no descriptor behind.
 */
export function openUpstreamSocket(sockets: SocketApi, settings: UpstreamSocketSettings, client: Endpoint, outbound: ConnectingOutbound, dscp: number | undefined, onPortFallback: () => void): number {
  const fd = openBound(sockets, settings, client, outbound, dscp, onPortFallback);
  try {
    sockets.setResetOnClose(fd, true);
  } catch (error) {
    sockets.close(fd);
    throw error;
  }
  return fd;
}

function openBound(sockets: SocketApi, settings: UpstreamSocketSettings, client: Endpoint, outbound: ConnectingOutbound, dscp: number | undefined, onPortFallback: () => void): number {
  const sent: Pick<SocketOptions, 'mark' | 'dscp' | 'ttl'> = { mark: settings.upstreamMark, ...(dscp !== undefined ? { dscp } : {}), ...(settings.ttl !== undefined ? { ttl: settings.ttl } : {}) };
  if (outbound.kind === 'socks5' || outbound.kind === 'http') return sockets.open({ family: outbound.proxy.endpoint.family, transport: 'tcp', ...sent });
  const family = client.family;
  if (outbound.kind === 'direct') return sockets.open({ family, transport: 'tcp', ...sent });
  let fd = sockets.open({ family, transport: 'tcp', ...sent, transparent: true, reuseAddress: true });
  try {
    sockets.bind(fd, client);
    return fd;
  } catch (error) {
    sockets.close(fd);
    if (!(error instanceof TproxyError && error.code === 'ERR_ADDRESS_IN_USE')) throw error;
  }
  onPortFallback();
  fd = sockets.open({ family, transport: 'tcp', ...sent, transparent: true, bindAddressNoPort: true });
  try {
    sockets.bind(fd, { ...client, port: 0 });
  } catch (error) {
    sockets.close(fd);
    throw error;
  }
  return fd;
}

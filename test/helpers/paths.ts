/** Paths of the built artefacts the root tests start as processes. */
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../bin/tproxy.js', import.meta.url));
export const AGENT = fileURLToPath(new URL('../../src/lab/agent.js', import.meta.url));
export const TCP_HOLD = fileURLToPath(new URL('../../src/lab/tcp-hold.js', import.meta.url));
export const SOCKET_MODULE = new URL('../../src/sys/socket.js', import.meta.url).href;

export { isProcessAlive as isAlive } from '../../src/sys/process.js';

export const TCP_PEER = fileURLToPath(new URL('./tcp-peer.js', import.meta.url));
/** A file under test/ in the source tree (fixtures and golden files are not compiled into dist). */
export function sourcePath(relative: string): string {
  return fileURLToPath(new URL(`../../../test/${relative}`, import.meta.url));
}
export const UPSTREAM_PROXY_AGENT = fileURLToPath(new URL('./upstream-proxy-agent.js', import.meta.url));
export const MMPROXY_AGENT = fileURLToPath(new URL('./mmproxy-agent.js', import.meta.url));
export const MMPROXY_UDP_AGENT = fileURLToPath(new URL('./mmproxy-udp-agent.js', import.meta.url));
export const UDP_PEERS = fileURLToPath(new URL('./udp-peers.js', import.meta.url));
export const FAKE_SOCKS5 = fileURLToPath(new URL('./fake-socks5.js', import.meta.url));
export const HEADER_SENDER = fileURLToPath(new URL('./header-sender.js', import.meta.url));
export const TRANSPARENT_HOLDER = fileURLToPath(new URL('./transparent-holder.js', import.meta.url));
export const SNI_CLIENT = fileURLToPath(new URL('./sni-client.js', import.meta.url));
export const PROXIED_CLIENT = fileURLToPath(new URL('./proxied-client.js', import.meta.url));
export const HELD_CONNECTIONS = fileURLToPath(new URL('./held-connections.js', import.meta.url));
export const PIECEWISE_BACKEND = fileURLToPath(new URL('./piecewise-backend.js', import.meta.url));

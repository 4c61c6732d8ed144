/**
 * Sending UDP datagrams with a chosen source address AND port without binding that port: a raw
 * socket (SOCK_RAW, IPPROTO_UDP) with IP_TRANSPARENT, the UDP header built by us, the source
 * address from IP_PKTINFO / IPV6_PKTINFO. The kernel adds the IP header and fragments as needed.
 *
 * This is the UDP relay's reply fallback when a local service already holds the original
 * destination's port (bind() gives EADDRINUSE). A raw UDP socket is also handed a copy of every
 * UDP datagram the host receives: a socket filter that accepts nothing drops those copies at once.
 * Needs CAP_NET_RAW (and CAP_NET_ADMIN for IP_TRANSPARENT).
 */
import * as C from '../core/net/constants.js';
import { IOVEC_SIZE, MSGHDR_SIZE, writeIovec, writeMsghdr } from '../core/net/msghdr.js';
import { UDP_HEADER_SIZE, writeUdpDatagram, type UdpFallbackRoute } from '../core/net/udp-datagram.js';
import type { Libc } from './libc.js';
import type { SocketApi } from './socket.js';

/** struct sock_fprog { u16 len; struct sock_filter *filter; } with one `ret #0` instruction. */
function dropAllFilter(libc: Libc): { program: Buffer; keep: Buffer } {
  const instructions = Buffer.alloc(8); // { u16 code = BPF_RET|BPF_K; u8 jt; u8 jf; u32 k = 0 }
  instructions.writeUInt16LE(0x06, 0);
  const program = Buffer.alloc(16);
  program.writeUInt16LE(1, 0);
  program.writeBigUInt64LE(libc.address(instructions), 8);
  return { program, keep: instructions };
}

export class RawUdpSender {
  readonly fd: number;
  private readonly packet = Buffer.alloc(65_535);
  private readonly iov = Buffer.alloc(IOVEC_SIZE);
  private readonly msghdr = Buffer.alloc(MSGHDR_SIZE);

  constructor(
    private readonly api: SocketApi,
    private readonly libc: Libc,
    readonly family: C.Family,
  ) {
    const fd = libc.socket(family === 4 ? C.AF_INET : C.AF_INET6, C.SOCK_RAW | C.SOCK_CLOEXEC | C.SOCK_NONBLOCK, C.IPPROTO_UDP);
    if (fd < 0) api.fail(`socket(${family === 4 ? 'AF_INET' : 'AF_INET6'}, SOCK_RAW, IPPROTO_UDP)`);
    this.fd = fd;
    try {
      const filter = dropAllFilter(libc);
      api.setBytes(fd, C.SOL_SOCKET, C.SO_ATTACH_FILTER, filter.program);
      api.setInt(fd, family === 4 ? C.SOL_IP : C.SOL_IPV6, family === 4 ? C.IP_TRANSPARENT : C.IPV6_TRANSPARENT, 1);
    } catch (error) {
      libc.close(fd);
      throw error;
    }
    writeIovec(this.iov, 0, libc.address(this.packet), 0);
  }

  /** Send payload[0, length) along `route`: bytes of payload sent, or -errno. */
  send(route: UdpFallbackRoute, payload: Buffer, length: number): number {
    if (length + UDP_HEADER_SIZE > this.packet.length) return -90; // EMSGSIZE
    const total = writeUdpDatagram(this.packet, route, payload, length);
    this.iov.writeUInt32LE(total, 8);
    writeMsghdr(this.msghdr, {
      nameAddress: this.libc.address(route.destinationSockaddr),
      nameLength: route.destinationSockaddr.length,
      iovAddress: this.libc.address(this.iov),
      iovCount: 1,
      controlAddress: this.libc.address(route.control),
      controlLength: route.control.length,
    });
    const n = this.libc.sendmsg(this.fd, this.msghdr, C.MSG_DONTWAIT);
    return n < 0 ? -this.libc.errno() : Math.max(0, n - UDP_HEADER_SIZE);
  }

  close(): void {
    this.libc.close(this.fd);
  }
}

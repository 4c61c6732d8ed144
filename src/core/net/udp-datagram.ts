/**
 * A UDP datagram built by hand (header, checksum) and the IP_PKTINFO / IPV6_PKTINFO control message
 * that picks its source address: what the reply fallback sends through a raw socket when the
 * original destination's address and port cannot be bound (EADDRINUSE). Pure.
 *
 *   udp header: u16 source port | u16 destination port | u16 length | u16 checksum   (RFC 768)
 *   checksum over the pseudo-header (source, destination, protocol 17, UDP length; RFC 768 and
 *   RFC 8200 8.1 give the same one's-complement sum) and the datagram; 0 is sent as 0xffff.
 */
import ipaddr from 'ipaddr.js';
import { encodeControlMessages } from './cmsg.js';
import { IPPROTO_UDP, IP_PKTINFO, IPV6_PKTINFO, SOL_IP, SOL_IPV6, type Family } from './constants.js';
import { encodeSockaddr, type Endpoint } from './sockaddr.js';

export const UDP_HEADER_SIZE = 8;

/** The address as 4 (IPv4) or 16 (IPv6) bytes in network order. */
export function addressBytes(endpoint: Pick<Endpoint, 'address'>): Buffer {
  return Buffer.from(ipaddr.parse(endpoint.address).toByteArray());
}

function sum16(buf: Buffer, start: number, end: number, initial: number): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The UDP checksum of `segment[0, length)` (header with a zero checksum field, then payload). */
export function udpChecksum(source: Buffer, destination: Buffer, segment: Buffer, length: number): number {
  let sum = sum16(source, 0, source.length, 0);
  sum = sum16(destination, 0, destination.length, sum);
  sum += IPPROTO_UDP + length;
  sum = sum16(segment, 0, length, sum);
  const checksum = ~fold(sum) & 0xffff;
  return checksum === 0 ? 0xffff : checksum;
}

export interface UdpRoute {
  readonly sourceAddress: Buffer;
  readonly sourcePort: number;
  readonly destinationAddress: Buffer;
  readonly destinationPort: number;
}

/** Write header and payload[0, length) into target; returns the datagram's length. */
export function writeUdpDatagram(target: Buffer, route: UdpRoute, payload: Buffer, length: number): number {
  const total = UDP_HEADER_SIZE + length;
  target.writeUInt16BE(route.sourcePort, 0);
  target.writeUInt16BE(route.destinationPort, 2);
  target.writeUInt16BE(total, 4);
  target.writeUInt16BE(0, 6);
  payload.copy(target, UDP_HEADER_SIZE, 0, length);
  target.writeUInt16BE(udpChecksum(route.sourceAddress, route.destinationAddress, target, total), 6);
  return total;
}

/**
 * msg_control that sets the source address of one datagram:
 *   struct in_pktinfo  { int ipi_ifindex; struct in_addr ipi_spec_dst; struct in_addr ipi_addr; }
 *   struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
 */
export function sourceAddressControl(family: Family, source: Buffer): Buffer {
  if (family === 4) {
    const data = Buffer.alloc(12);
    source.copy(data, 4);
    return encodeControlMessages([{ level: SOL_IP, type: IP_PKTINFO, data }]);
  }
  const data = Buffer.alloc(20);
  source.copy(data, 0);
  return encodeControlMessages([{ level: SOL_IPV6, type: IPV6_PKTINFO, data }]);
}

/** Everything a raw socket needs to send datagrams from `source` to `destination`, encoded once. */
export interface UdpFallbackRoute extends UdpRoute {
  readonly family: Family;
  /** sockaddr of the destination with port 0 (raw sockets take the port from the UDP header). */
  readonly destinationSockaddr: Buffer;
  /** IP_PKTINFO / IPV6_PKTINFO with the source address. */
  readonly control: Buffer;
}

export function udpFallbackRoute(source: Endpoint, destination: Endpoint): UdpFallbackRoute {
  const sourceAddress = addressBytes(source);
  return {
    family: destination.family,
    sourceAddress,
    sourcePort: source.port,
    destinationAddress: addressBytes(destination),
    destinationPort: destination.port,
    destinationSockaddr: encodeSockaddr({ ...destination, port: 0 }),
    control: sourceAddressControl(destination.family, sourceAddress),
  };
}

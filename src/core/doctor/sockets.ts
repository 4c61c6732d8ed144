/**
 * Sockets: for each intercepted transport and family, the listener the tproxy rule redirects to
 * (found with the model's own lookup, as the TPROXY target finds it), and whether it has
 * IP_TRANSPARENT; local services on intercepted UDP ports, which take the reply sockets' ports.
 */
import { formatIp, parseIp } from '../net/address.js';
import { describeSocket, lookupListener, lookupUdp, type SocketEntry } from '../model/sockets.js';
import { tproxyLocalAddress } from '../model/world.js';
import type { ListenerRules } from '../rules/config.js';
import { finding, type Finding } from './finding.js';
import type { DoctorInput } from './input.js';
import { pidOf } from './privileges.js';
import { probePacket, probeSites, type ProbeSite } from './probe-packets.js';

const DOC = {
  4: { saddr: parseIp('198.51.100.2'), daddr: parseIp('203.0.113.200') },
  6: { saddr: parseIp('2001:db8::2'), daddr: parseIp('2001:db8:ffff::200') },
} as const;

/** Sockets on a redirect port (any listener's): TCP listeners and unconnected UDP sockets. */
export function proxyListeners(input: DoctorInput): SocketEntry[] {
  const ports = new Set(input.config.listeners.map((l) => l.port));
  return input.world.sockets.filter((s) => ports.has(s.local.port) && (s.l4proto === 'tcp' ? s.state === 'listen' : s.state === 'unconnected'));
}

function redirectTarget(input: DoctorInput, listener: ListenerRules, site: ProbeSite, transport: 'tcp' | 'udp'): { socket?: SocketEntry; where: string } {
  const packet = probePacket(site, transport, listener.intercept.find((s) => s.transport === transport)?.ports[0]?.from ?? 80);
  const configured = listener.addresses[site.family];
  const addr = configured !== undefined ? parseIp(configured) : tproxyLocalAddress(input.world, packet);
  const socket = transport === 'tcp' ? lookupListener(input.world.sockets, packet, addr, listener.port) : lookupUdp(input.world.sockets, { ...packet, sport: 0 }, addr, listener.port);
  const where = `${transport} ${site.family === 6 ? `[${formatIp(addr)}]` : formatIp(addr)}:${listener.port}`;
  return socket ? { socket, where } : { where };
}

export function checkSockets(input: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const c = input.config;
  const sites = probeSites(input.world, c);
  for (const listener of c.listeners) {
    const transports = [...new Set(listener.intercept.map((s) => s.transport))];
    for (const family of listener.families) {
      // Without a client subnet, the listener lookup still works for a documentation address.
      const site = sites.find((s) => s.family === family) ?? { iif: c.interfaces[0] ?? 'eth0', family, saddr: DOC[family].saddr, daddr: DOC[family].daddr };
      for (const transport of transports) {
        const suffix = `${transport}.ipv${family}`;
        const { socket, where } = redirectTarget(input, listener, site, transport);
        if (!socket) {
          out.push(
            finding('sockets', `sockets.listener.${suffix}`, 'fail', `no ${transport.toUpperCase()} socket for ${where} (the tproxy rule's target)`, `tproxy finds no socket: ${c.failMode === 'open' ? 'intercepted traffic goes around the proxy (fail open)' : `the fail-closed rule ${c.failMode}s intercepted traffic`}`, input.commands.run),
          );
          continue;
        }
        if (!socket.transparent) {
          const pid = pidOf(socket.process);
          out.push(
            finding('sockets', `sockets.transparent.${suffix}`, 'fail', `${describeSocket(socket)} takes ${where} but has no IP_TRANSPARENT`, 'tproxy only hands packets to transparent sockets: this one never receives intercepted traffic, and it keeps the proxy from binding the port', pid ? `kill ${pid}` : undefined),
          );
          continue;
        }
        out.push(finding('sockets', `sockets.listener.${suffix}`, 'pass', `${describeSocket(socket)} takes ${where}`, 'the tproxy rule has a transparent socket to hand packets to'));
      }
    }
  }
  const listenPorts = new Set(c.listeners.map((l) => l.port));
  for (const spec of c.listeners.flatMap((l) => l.intercept).filter((s) => s.transport === 'udp')) {
    for (const range of spec.ports.slice(0, 16)) {
      for (let port = range.from; port <= Math.min(range.to, range.from + 255); port++) {
        const services = input.world.sockets.filter((s) => s.l4proto === 'udp' && s.local.port === port && !s.transparent && s.state === 'unconnected' && !listenPorts.has(port));
        for (const s of services) {
          const any = s.local.addr.value === 0n;
          out.push(
            finding(
              'sockets',
              'sockets.udp-reply-port',
              'warn',
              `${describeSocket(s)} is bound to intercepted UDP port ${port}${any ? ' on every address' : ''}`,
              `reply sockets bound to an original destination with this port collide with it (EADDRINUSE); the relay then sends replies through a raw socket (needs CAP_NET_RAW). Bind the service to its own address${any ? '' : `, or bypass it (--bypass-dst ${formatIp(s.local.addr)})`}`,
            ),
          );
        }
      }
    }
  }
  return out.filter((f, i, all) => all.findIndex((g) => g.id === f.id && g.seen === f.seen) === i);
}


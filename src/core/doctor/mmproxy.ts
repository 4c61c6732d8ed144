/**
 * The mmproxy listeners' reply routing (issue 16), checked by following each backend's first reply
 * (a SYN-ACK; for a `protocol: udp` listener a datagram to its session socket) through the model
 * (model/mmproxy-reply.ts) from a documentation client address:
 * - a backend on loopback: the `from 127.0.0.0/8 iif lo` (`::1/128`) rule and the local route of
 *   its table must make the reply local (route_localnet is not needed: the packets never leave lo);
 * - a backend on another host: reachable from the client's address, its reply marked by the divert
 *   rule and made local by the fwmark rule, and not refused by the reverse-path filter of the
 *   interface it comes in on;
 * - a backend on a non-loopback address of this host: its replies leave by the main table (no rule
 *   of ours can take them without taking the host's own traffic from that address).
 * A listener without a fixed backend (the header's destination) is checked with a loopback one.
 *
 * A `protocol: udp` backend on loopback is also checked for the socket that receives its datagrams
 * (the model's UDP lookup over the host's sockets): bound to the wildcard address (0.0.0.0, ::), it
 * answers from the address the route lookup picks for the client's address (the main table's way
 * out, not 127.0.0.1 / ::1) unless it sets the source itself (IP_PKTINFO, which sock_diag does not
 * show): the loopback rule does not match such a reply and it leaves the host. Seen in a namespace
 * (test/dataplane/mmproxy/udp-run.root.test.ts): no reply came back; bound to 127.0.0.1 it did.
 * TCP does not have this: an accepted connection answers from the address it was accepted on.
 * Pure.
 */
import { formatIp, isAnyAddress, parseIp, unmapV4, type IpAddress } from '../net/address.js';
import { prefixContains } from '../net/prefix.js';
import type { Family } from '../net/constants.js';
import { describeReplyPath, formatEndpoint, isLoopback, mmproxyReplyPath, type MmproxyFlow } from '../model/mmproxy-reply.js';
import { hex } from '../model/packet.js';
import { describeIpRule, lookupTable } from '../model/routing.js';
import { describeSocket, lookupUdp } from '../model/sockets.js';
import type { MmproxyBackend } from '../rules/config.js';
import { loopbackPrefix } from '../rules/policy-routing.js';
import { finding, type Finding } from './finding.js';
import type { DoctorInput } from './input.js';
import { interfaceConf, reversePath } from './sysctls.js';
import { formatTrace } from './trace-text.js';

/** The client of the probe flows: a documentation address, port 40000. */
const CLIENT: Readonly<Record<Family, IpAddress>> = {
  4: { family: 4, value: 0xc633647bn }, // 198.51.100.123
  6: { family: 6, value: (0x20010db8n << 96n) | (0xffffn << 80n) | 0x123n }, // 2001:db8:ffff::123
};
const LOOPBACK_EXAMPLE: Readonly<Record<Family, string>> = { 4: '127.0.0.1', 6: '::1' };

function flowOf(backend: MmproxyBackend): { flow: MmproxyFlow; named: string } {
  const address = backend.address ?? LOOPBACK_EXAMPLE[backend.family];
  const port = backend.port ?? 80;
  const flow: MmproxyFlow = { transport: backend.transport, client: { addr: CLIENT[backend.family], port: 40000 }, backend: { addr: parseIp(address), port }, upstreamMark: backend.upstreamMark };
  const named = backend.address === undefined ? `the header's destination (checked as ${formatEndpoint(flow.backend)})` : formatEndpoint(flow.backend);
  return { flow, named };
}

function loopbackFault(input: DoctorInput, family: Family): Finding | undefined {
  const c = input.config;
  const addr = parseIp(LOOPBACK_EXAMPLE[family]);
  const rule = input.world.routing.rules.find((r) => r.family === family && r.action === 'lookup' && !r.not && r.iif === 'lo' && r.fwmark === undefined && r.from !== undefined && prefixContains(r.from, addr));
  const v = `ipv${family}`;
  if (!rule) {
    return finding(
      'mmproxy',
      `mmproxy.loopback-rule.${v}`,
      'fail',
      `no IPv${family} ip rule sends this host's packets from ${loopbackPrefix(family)} (iif lo) to a local table`,
      `a backend on loopback answers the client's address from ${LOOPBACK_EXAMPLE[family]}: the main table sends that reply out of the host instead of to the listener's transparent socket`,
      `ip -${family} rule add from ${loopbackPrefix(family)} iif lo lookup ${c.routeTable} priority ${c.rulePriority}`,
    );
  }
  const table = rule.table ?? 'main';
  const route = lookupTable(input.world.routing.routes, table, family, CLIENT[family]);
  if (route?.type !== 'local') {
    return finding(
      'mmproxy',
      `mmproxy.local-route.${v}`,
      'fail',
      `ip rule ${describeIpRule(rule)}, but table ${table} has no local default route`,
      'the loopback rule only makes the replies local when its table routes every destination to this host',
      `ip -${family} route add local default dev lo table ${table}`,
    );
  }
  return undefined;
}

function checkBackend(input: DoctorInput, backend: MmproxyBackend): Finding[] {
  const { flow, named } = flowOf(backend);
  const family = backend.family;
  const id = `${backend.listener}.ipv${family}`;
  const path = mmproxyReplyPath(input.world, flow);
  const what = `mmproxy ${backend.listener}, IPv${family} backend ${named}`;
  const whose = `mmproxy ${backend.listener}, IPv${family}${backend.address === undefined ? `, ${named}` : ''}`;
  if (path.place === 'local-address') {
    return [
      finding(
        'mmproxy',
        `mmproxy.backend.${id}`,
        'fail',
        `${what} is an address of this host but not loopback`,
        'it answers the client from that address, and the main table sends the reply out of the host; a rule taking those replies back would take all of the host\'s own traffic from that address',
        undefined,
      ),
    ];
  }
  if (path.place === 'unreachable') {
    return [finding('mmproxy', `mmproxy.backend.${id}`, 'fail', `${what}: no route from a client's address (${formatIp(flow.client.addr)}, mark ${hex(flow.upstreamMark)})`, 'the connection to the backend cannot be made: add a route to it', undefined)];
  }
  const out: Finding[] = [];
  if (path.reaches) {
    out.push(finding('mmproxy', `mmproxy.reply.${id}`, 'pass', `${whose}: ${describeReplyPath(path)}`, backend.transport === 'udp' ? 'the backend\'s reply datagrams reach the listener\'s session socket' : 'the backend\'s replies reach the listener\'s connection'));
  } else {
    const cause = path.place === 'loopback' ? loopbackFault(input, family) : undefined;
    if (cause) out.push(cause);
    const marked = (path.explanation.packet.mark & input.config.fwmarkMask) === (input.config.fwmark & input.config.fwmarkMask);
    const why =
      path.place === 'loopback'
        ? 'the replies of a backend on loopback must be routed locally by the loopback rule'
        : marked
          ? 'the divert rule marked the reply, but routing does not make it local: the fwmark rule or the local route of its table is missing or shadowed (see routing)'
          : `nothing marks the backend's reply (the ${backend.transport.toUpperCase()} divert rule, \`socket transparent\`, is missing), so it is routed to the client directly`;
    out.push(finding('mmproxy', `mmproxy.reply.${id}`, 'fail', `${whose}: ${describeReplyPath(path)}`, why, cause?.fix ?? input.commands.apply, formatTrace(path.explanation)));
  }
  if (path.place === 'remote' && family === 4 && path.via !== undefined) {
    const conf = interfaceConf(input.world, path.via);
    const r = reversePath(input.world, { iif: path.via, family: 4, saddr: flow.backend.addr, daddr: flow.client.addr }, input.config.fwmark, conf);
    if (!r.ok) {
      out.push(
        finding(
          'mmproxy',
          `mmproxy.rp_filter.${id}`,
          'fail',
          `${what} answers through ${path.via}: rp_filter ${conf.rpFilter} (${conf.shown.rp_filter}), src_valid_mark ${conf.srcValidMark ? 1 : 0}; ${r.seen}`,
          'the reverse-path filter drops the backend\'s replies before they reach the listener\'s socket',
          r.errno === 'EINVAL' && conf.srcValidMark ? `sysctl -w net.ipv4.conf.${path.via}.accept_local=1` : `sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.${path.via}.rp_filter=2`,
          r.trace,
        ),
      );
    }
  }
  return out;
}

/**
 * A UDP backend on loopback whose datagrams reach a socket bound to the wildcard address: its
 * replies take their source from the route lookup and miss the loopback rule (see above).
 */
function checkUdpBackendBind(input: DoctorInput, backend: MmproxyBackend): Finding | undefined {
  if (backend.transport !== 'udp' || backend.address === undefined || backend.port === undefined) return undefined;
  const { flow, named } = flowOf(backend);
  if (!isLoopback(flow.backend.addr)) return undefined;
  const family = backend.family;
  const probe = { family, l4proto: 'udp', saddr: flow.client.addr, daddr: flow.backend.addr, sport: flow.client.port, dport: flow.backend.port, tcpFlags: 0, iif: 'lo', mark: 0, dscp: 0, ecn: 0, ttl: 64, ctState: 'new' } as const;
  const socket = lookupUdp(input.world.sockets, probe, flow.backend.addr, flow.backend.port);
  if (!socket || socket.remote) return undefined;
  const local = socket.family === family ? socket.local.addr : isAnyAddress(socket.local.addr) ? socket.local.addr : unmapV4(socket.local.addr);
  if (!local || !isAnyAddress(local)) return undefined;
  const loopback = LOOPBACK_EXAMPLE[family];
  return finding(
    'mmproxy',
    `mmproxy.backend-bind.${backend.listener}.ipv${family}`,
    'warn',
    `mmproxy ${backend.listener}, IPv${family} backend ${named}: its datagrams reach ${describeSocket(socket)}, bound to the wildcard address`,
    `a UDP socket bound to ${family === 4 ? '0.0.0.0' : '::'} answers from the address the route lookup picks for the client's address (the main table's way out, not ${loopback}), so the loopback rule (from ${loopbackPrefix(family)} iif lo) does not match its replies: they leave the host and never reach the session socket. ` +
      `Bind the backend to ${formatEndpoint(flow.backend)} (its listen or bind setting), unless it answers from the address each datagram came to (IP_PKTINFO / IPV6_PKTINFO on its replies, which this check cannot see)`,
  );
}

export function checkMmproxy(input: DoctorInput): Finding[] {
  const backends = input.config.mmproxy?.backends ?? [];
  const out = backends.flatMap((b) => [...checkBackend(input, b), ...[checkUdpBackendBind(input, b)].filter((f) => f !== undefined)]);
  // The loopback rule is wanted for every family the plan gives it, even when no fixed backend is on loopback.
  for (const family of input.config.mmproxy?.loopback ?? []) {
    if (backends.some((b) => b.family === family && (b.address === undefined || isLoopback(parseIp(b.address))))) continue;
    const fault = loopbackFault(input, family);
    if (fault) out.push(fault);
  }
  // A fault named twice (two listeners on loopback) is reported once.
  return out.filter((f, i) => out.findIndex((g) => g.id === f.id && g.seen === f.seen) === i);
}

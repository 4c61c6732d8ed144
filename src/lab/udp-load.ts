/**
 * UDP load programs for the benchmark, run inside lab namespaces. Built on the socket layer
 * (epoll, recvmmsg / sendmmsg) so the endpoints cost as little as the relay they measure.
 * Prints JSON lines on stdout.
 *
 *   udp-load serve --echo P,P --sink P,P   echo ports (each datagram back to its source) and sink
 *                                           ports (count only), IPv4; stdin `report` prints the
 *                                           datagrams counted per sink port
 *   udp-load rr HOST PORT --flows F --duration-ms D --size S
 *                                           F connected sockets, one datagram in flight each:
 *                                           round trips completed in D ms, and this
 *                                           process's CPU meanwhile (userMicros, systemMicros)
 *   udp-load flood HOST PORT --duration-ms D --size S
 *                                           one connected socket sending as fast as it can
 *   udp-load spray HOST PORT --sources N [--first-port P] [--size S]
 *                                           one datagram from each of N source ports (P, P+1, ...),
 *                                           each socket closed right after: N new flows for a
 *                                           proxy, none of which hears back
 */
import { createInterface } from 'node:readline';
import { EPOLLIN } from '../core/net/constants.js';
import { SocketApi } from '../sys/socket.js';

const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

function option(args: readonly string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
}

const ports = (text: string): number[] => text.split(',').filter(Boolean).map(Number);

function serve(args: readonly string[]): Promise<number> {
  const api = new SocketApi();
  const epoll = api.epoll(64);
  const batch = api.batch(64, 2048);
  const kind = new Map<number, { sink: boolean; port: number }>();
  const counts = new Map<number, number>();
  for (const [list, sink] of [[ports(option(args, '--echo', '')), false], [ports(option(args, '--sink', '')), true]] as const) {
    for (const port of list) {
      const fd = api.open({ family: 4, transport: 'udp', reuseAddress: true, receiveBufferBytes: 4 << 20 });
      api.bind(fd, { family: 4, address: '0.0.0.0', port });
      epoll.add(fd, EPOLLIN);
      kind.set(fd, { sink, port });
      counts.set(port, 0);
    }
  }
  let stop = false;
  createInterface({ input: process.stdin })
    .on('line', (line) => {
      if (line === 'report') print({ event: 'report', counts: Object.fromEntries(counts) });
    })
    .on('close', () => (stop = true));
  print({ event: 'ready' });
  return new Promise((resolve) => {
    const tick = (): void => {
      const end = Date.now() + 20;
      while (Date.now() < end && !stop) {
        const n = epoll.wait(10);
        for (let i = 0; i < n; i++) {
          const fd = epoll.readyFd(i);
          const k = kind.get(fd);
          if (!k) continue;
          for (let round = 0; round < 16; round++) {
            const got = batch.receive(fd);
            if (got <= 0) break;
            counts.set(k.port, (counts.get(k.port) ?? 0) + got);
            if (!k.sink) batch.send(fd, 0, got, 'source');
          }
        }
      }
      if (stop) resolve(0);
      else setImmediate(tick);
    };
    setImmediate(tick);
  });
}

function rr(args: readonly string[]): number {
  const [host = '', portText = '0'] = args;
  const flows = Number(option(args, '--flows', '4'));
  const durationMs = Number(option(args, '--duration-ms', '2000'));
  const size = Number(option(args, '--size', '64'));
  const api = new SocketApi();
  const epoll = api.epoll(flows);
  const batch = api.batch(8, 2048);
  const payload = Buffer.alloc(size, 0x61);
  const sentAt = new Map<number, number>();
  for (let i = 0; i < flows; i++) {
    const fd = api.open({ family: 4, transport: 'udp' });
    api.connect(fd, { family: 4, address: host, port: Number(portText) });
    epoll.add(fd, EPOLLIN);
    sentAt.set(fd, 0);
  }
  let roundTrips = 0;
  let resent = 0;
  const cpuBefore = process.cpuUsage();
  const start = Date.now();
  for (const fd of sentAt.keys()) {
    api.sendDatagram(fd, payload, size, null);
    sentAt.set(fd, start);
  }
  let now = start;
  while (now - start < durationMs) {
    const n = epoll.wait(20);
    now = Date.now();
    for (let i = 0; i < n; i++) {
      const fd = epoll.readyFd(i);
      const got = batch.receive(fd);
      if (got <= 0) continue;
      roundTrips += got;
      api.sendDatagram(fd, payload, size, null);
      sentAt.set(fd, now);
    }
    // A lost datagram would stall its flow: send again after 100 ms of silence.
    for (const [fd, at] of sentAt) {
      if (now - at > 100) {
        resent++;
        api.sendDatagram(fd, payload, size, null);
        sentAt.set(fd, now);
      }
    }
  }
  const elapsed = Date.now() - start;
  // This process's own CPU over the run (the client stage's cost per round trip, in the bench).
  const cpu = process.cpuUsage(cpuBefore);
  print({ roundTrips, resent, durationMs: elapsed, perSecond: Math.round((roundTrips * 1000) / elapsed), userMicros: cpu.user, systemMicros: cpu.system });
  return 0;
}

function flood(args: readonly string[]): number {
  const [host = '', portText = '0'] = args;
  const durationMs = Number(option(args, '--duration-ms', '2000'));
  const size = Number(option(args, '--size', '64'));
  const api = new SocketApi();
  const fd = api.open({ family: 4, transport: 'udp' });
  api.connect(fd, { family: 4, address: host, port: Number(portText) });
  const batch = api.batch(32, size);
  for (let i = 0; i < 32; i++) batch.lengths[i] = size;
  let sent = 0;
  let blocked = 0;
  const start = Date.now();
  while (Date.now() - start < durationMs) {
    const n = batch.send(fd, 0, 32, null);
    if (n > 0) sent += n;
    else blocked++;
  }
  const elapsed = Date.now() - start;
  print({ sent, blocked, durationMs: elapsed, perSecond: Math.round((sent * 1000) / elapsed) });
  return 0;
}

function spray(args: readonly string[]): number {
  const [host = '', portText = '0'] = args;
  const sources = Number(option(args, '--sources', '1000'));
  const firstPort = Number(option(args, '--first-port', '20000'));
  const size = Number(option(args, '--size', '32'));
  const api = new SocketApi();
  const payload = Buffer.alloc(size, 0x73);
  let sent = 0;
  let failed = 0;
  const start = Date.now();
  for (let i = 0; i < sources; i++) {
    const fd = api.open({ family: 4, transport: 'udp', reuseAddress: true });
    try {
      api.bind(fd, { family: 4, address: '0.0.0.0', port: firstPort + i });
      api.connect(fd, { family: 4, address: host, port: Number(portText) });
      if ((api.send(fd, payload, size) ?? -1) < 0) failed++;
      else sent++;
    } catch {
      failed++;
    } finally {
      api.close(fd);
    }
  }
  print({ sent, failed, durationMs: Date.now() - start });
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'serve') return serve(rest);
  if (command === 'rr') return rr(rest);
  if (command === 'flood') return flood(rest);
  if (command === 'spray') return spray(rest);
  process.stderr.write('usage: udp-load serve --echo P,P --sink P,P | rr HOST PORT [--flows F] [--duration-ms D] [--size S] | flood HOST PORT [--duration-ms D] [--size S]\n');
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`udp-load: ${String(error)}\n`);
    process.exit(1);
  },
);

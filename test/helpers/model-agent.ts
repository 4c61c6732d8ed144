/**
 * Processes for the model's differential tests, run inside lab namespaces; JSON lines on stdout.
 *
 *   sockets SPECS   open the sockets of a scenario (TCP listeners, UDP sockets; transparent or
 *                   not) and report every accepted connection, datagram and data received:
 *                   {"event":"accept"|"datagram"|"data","id","sport",...}. {"event":"ready"} first.
 *   probe PROBES [FENCE]
 *                   make the client side of the probes: a TCP connect (SYN) from a fixed source
 *                   port, or a UDP datagram; "hold" keeps a connection open and sends a line on
 *                   "data" on stdin; "time-wait" waits for the server's FIN and closes.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { SocketApi } from '../../src/sys/socket.js';

export interface SocketSpec {
  readonly id: string;
  readonly proto: 'tcp' | 'udp';
  readonly address: string;
  readonly port: number;
  readonly transparent?: boolean;
  /** TCP: the proxy closes first right after accepting (leaves a TIME_WAIT socket on its side). */
  readonly closeFirst?: boolean;
}

export interface ProbeSpec {
  readonly proto: 'tcp' | 'udp';
  readonly saddr?: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly ttl?: number;
  /** tcp: connect and stop (default); hold: keep open; time-wait: close after the peer's FIN. */
  readonly mode?: 'syn' | 'hold' | 'time-wait';
}

const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};

function family(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

function sockets(specs: SocketSpec[]): void {
  const api = new SocketApi();
  const udp: { id: string; fd: number }[] = [];
  for (const spec of specs) {
    const fam = family(spec.address);
    const fd = api.open({ family: fam, transport: spec.proto, transparent: spec.transparent ?? false, reuseAddress: true, v6Only: true });
    api.bind(fd, { family: fam, address: spec.address, port: spec.port });
    if (spec.proto === 'udp') {
      udp.push({ id: spec.id, fd });
      continue;
    }
    api.listen(fd, 64);
    const server = net.createServer({ allowHalfOpen: false }, (socket) => {
      const sport = socket.remotePort ?? 0;
      print({ event: 'accept', id: spec.id, sport, local: socket.localAddress, localPort: socket.localPort });
      socket.on('data', () => print({ event: 'data', id: spec.id, sport }));
      socket.on('error', () => undefined);
      if (spec.closeFirst) socket.end();
    });
    server.listen({ fd });
  }
  if (udp.length) {
    const receiver = api.receiver(2048);
    setInterval(() => {
      for (const { id, fd } of udp) {
        for (let i = 0; i < 64; i++) {
          const d = receiver.receive(fd);
          if (!d) break;
          print({ event: 'datagram', id, sport: d.source.port, from: d.source.address });
        }
      }
    }, 10);
  }
  print({ event: 'ready' });
}

/** After every probe left: one datagram to FENCE (ADDRESS:PORT/SPORT), so the observer knows the probes went first. */
function sendFence(fence: string | undefined): void {
  const m = fence ? /^(.+):(\d+)\/(\d+)$/.exec(fence) : null;
  if (!m) return;
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  s.bind({ port: Number(m[3]) }, () => s.send('fence', Number(m[2]), m[1], () => s.close()));
}

function probe(probes: ProbeSpec[], fence: string | undefined): void {
  const held: net.Socket[] = [];
  const sends: Promise<void>[] = [];
  for (const p of probes) {
    const fam = family(p.daddr);
    if (p.proto === 'udp') {
      const s = dgram.createSocket({ type: fam === 6 ? 'udp6' : 'udp4', reuseAddr: true });
      sends.push(
        new Promise<void>((resolve) => {
          s.on('error', (e) => {
            print({ event: 'probe', sport: p.sport, result: (e as NodeJS.ErrnoException).code ?? 'error' });
            resolve();
          });
          s.bind({ port: p.sport, ...(p.saddr ? { address: p.saddr } : {}) }, () => {
            if (p.ttl !== undefined) s.setTTL(p.ttl);
            s.send('probe', p.dport, p.daddr, (error) => {
              print({ event: 'probe', sport: p.sport, result: error ? 'error' : 'sent' });
              setTimeout(() => s.close(), 3000).unref();
              resolve();
            });
          });
        }),
      );
      continue;
    }
    const socket = net.connect({ host: p.daddr, port: p.dport, localPort: p.sport, ...(p.saddr ? { localAddress: p.saddr } : {}), family: fam });
    socket.on('error', (e: NodeJS.ErrnoException) => print({ event: 'probe', sport: p.sport, result: e.code ?? 'error' }));
    socket.on('connect', () => {
      print({ event: 'probe', sport: p.sport, result: 'connected' });
      // Kept open (a reset before the proxy accepts would hide the peer's port from it).
      if (p.mode === 'hold') held.push(socket);
    });
    socket.on('end', () => {
      socket.end();
      print({ event: 'closed', sport: p.sport });
    });
    socket.setTimeout(2500, () => {
      if (socket.connecting) socket.destroy();
    });
  }
  void Promise.all(sends).then(() => sendFence(fence));
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'data') for (const s of held) s.write('data\n');
  });
  process.stdin.on('end', () => process.exit(0));
  print({ event: 'started' });
}

const [mode, spec, fence] = process.argv.slice(2);
if (mode === 'sockets') sockets(JSON.parse(spec ?? '[]') as SocketSpec[]);
else if (mode === 'probe') probe(JSON.parse(spec ?? '[]') as ProbeSpec[], fence);
else {
  process.stderr.write('usage: model-agent sockets SPECS | probe PROBES [FENCE_ADDR:PORT]\n');
  process.exit(2);
}

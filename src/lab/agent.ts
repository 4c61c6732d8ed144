/**
 * Lab agent: small programs run inside lab namespaces. Each prints JSON lines on stdout.
 *
 *   agent serve --port 80 [--raw-port N]
 *                                TCP and UDP echo servers on IPv4 and IPv6; every reply says which
 *                                peer address the server saw. Prints {"event":"ready"} when bound.
 *                                --raw-port: also a UDP echo that returns each datagram unchanged.
 *   agent udp-flows | udp-peer | dns ...   see agent-udp.ts
 *   agent probe tcp|udp HOST PORT MESSAGE [--timeout-ms N]
 *                                sends MESSAGE, waits for the echo, prints what came back and from
 *                                which address; exit 0 on a reply, 1 otherwise.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { dnsQuery, udpFlows, udpPeer } from './agent-udp.js';

export interface EchoReply {
  /** The peer the server saw (for TCP: remote address of the accepted socket). */
  readonly seen: { readonly address: string; readonly port: number };
  readonly server: { readonly address: string; readonly port: number };
  readonly message: string;
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function serve(port: number, rawPort: number | undefined): Promise<void> {
  const closers: (() => void)[] = [];
  for (const host of rawPort === undefined ? [] : ['0.0.0.0', '::']) {
    const raw = dgram.createSocket({ type: host === '::' ? 'udp6' : 'udp4', ipv6Only: host === '::', recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
    raw.on('message', (msg, rinfo) => raw.send(msg, rinfo.port, rinfo.address));
    await new Promise<void>((resolve, reject) => {
      raw.once('error', reject);
      raw.bind({ address: host, port: rawPort }, resolve);
    });
    closers.push(() => raw.close());
  }
  for (const host of ['0.0.0.0', '::']) {
    const tcp = net.createServer({ allowHalfOpen: true }, (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => undefined);
      socket.on('end', () => {
        const reply: EchoReply = {
          seen: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
          server: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
          message: Buffer.concat(chunks).toString('utf8'),
        };
        print({ event: 'tcp', ...reply });
        socket.end(JSON.stringify(reply));
      });
    });
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host, port, ipv6Only: host === '::' }, resolve);
    });
    closers.push(() => tcp.close());
    // Room for a burst (a test sends 200 flows' first datagrams at once) while this process, which
    // prints a line per datagram, waits for a CPU on a busy machine: each datagram is charged its
    // whole buffer, not its payload, so the default receive buffer can fill, and a datagram dropped
    // here looks like one the proxy lost.
    const udp = dgram.createSocket({ type: host === '::' ? 'udp6' : 'udp4', ipv6Only: host === '::', recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
    udp.on('message', (msg, rinfo) => {
      const reply: EchoReply = {
        seen: { address: rinfo.address, port: rinfo.port },
        server: { address: host, port },
        message: msg.toString('utf8'),
      };
      print({ event: 'udp', ...reply });
      udp.send(JSON.stringify(reply), rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: host, port }, resolve);
    });
    closers.push(() => udp.close());
  }
  print({ event: 'ready', port });
  const stop = (): void => {
    for (const c of closers) c();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function probe(transport: string, host: string, port: number, message: string, timeoutMs: number): Promise<number> {
  const fail = (reason: string): number => {
    print({ ok: false, reason });
    return 1;
  };
  if (transport === 'tcp') {
    return new Promise<number>((resolve) => {
      const socket = net.connect({ host, port, allowHalfOpen: true });
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(fail(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      let from = { address: '', port: 0 };
      let local = { address: '', port: 0 };
      socket.on('connect', () => {
        from = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
        local = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
        socket.end(message);
      });
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', (e) => {
        clearTimeout(timer);
        resolve(fail(`${(e as NodeJS.ErrnoException).code ?? e.message}`));
      });
      socket.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          print({ ok: true, from, local, reply: JSON.parse(text) as EchoReply });
          resolve(0);
        } catch {
          resolve(fail(`unexpected reply: ${text.slice(0, 200)}`));
        }
      });
    });
  }
  return new Promise<number>((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(fail(`no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', (e) => {
      clearTimeout(timer);
      socket.close();
      resolve(fail(`${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    socket.on('message', (msg, rinfo) => {
      clearTimeout(timer);
      const local = socket.address();
      socket.close();
      try {
        print({ ok: true, from: { address: rinfo.address, port: rinfo.port }, local: { address: local.address, port: local.port }, reply: JSON.parse(msg.toString('utf8')) as EchoReply });
        resolve(0);
      } catch {
        resolve(fail(`unexpected reply: ${msg.toString('utf8').slice(0, 200)}`));
      }
    });
    socket.send(message, port, host);
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'serve') {
    const i = rest.indexOf('--port');
    const r = rest.indexOf('--raw-port');
    await serve(Number(i >= 0 ? rest[i + 1] : 80), r >= 0 ? Number(rest[r + 1]) : undefined);
    return -1; // keep running
  }
  if (command === 'probe') {
    const [transport = '', host = '', port = '0', message = ''] = rest;
    const i = rest.indexOf('--timeout-ms');
    return probe(transport, host, Number(port), message, Number(i >= 0 ? rest[i + 1] : 3000));
  }
  if (command === 'udp-flows') return udpFlows(rest);
  if (command === 'udp-peer') return udpPeer(rest);
  if (command === 'dns') return dnsQuery(rest);
  process.stderr.write('usage: agent serve --port N | agent probe tcp|udp HOST PORT MESSAGE [--timeout-ms N] | agent udp-flows|udp-peer|dns ...\n');
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`agent: ${String(error)}\n`);
    process.exit(1);
  },
);

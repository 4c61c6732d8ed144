/**
 * UDP programs of the lab agent (see agent.ts), each printing JSON lines on stdout:
 *
 *   udp-flows HOST PORT --count N [--rounds R] [--hold-first]
 *       N sockets, each sending its own payload to HOST:PORT per round (all at once) and waiting
 *       for the echo; reports per flow whether exactly its own payload came back from HOST:PORT.
 *       --hold-first: flow 0 sends first, then the program waits for a line on stdin before the
 *       others send (lets a test line up the proxy's bind-before-connect window).
 *   udp-peer [--bind ADDRESS] [--port P]
 *       one socket; prints {"event":"ready"} then every datagram received (source, length, sha1,
 *       text); stdin lines `send HOST PORT TEXT`, `send-hex HOST PORT HEX` and
 *       `send-size HOST PORT BYTES` send datagrams.
 *   dns HOST NAME [--type A|AAAA]
 *       one DNS query over UDP to HOST:53; prints the answer and where it came from.
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { decodeDnsResponse, encodeDnsQuery, type DnsType } from './dns.js';
import type { EchoReply } from './agent.js';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function option(args: readonly string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
}

const socketType = (host: string): 'udp4' | 'udp6' => (net.isIPv6(host) ? 'udp6' : 'udp4');

export async function udpFlows(args: readonly string[]): Promise<number> {
  const [host = '', portText = '0'] = args;
  const port = Number(portText);
  const count = Number(option(args, '--count', '10'));
  const rounds = Number(option(args, '--rounds', '1'));
  const timeoutMs = Number(option(args, '--timeout-ms', '10000'));
  const holdFirst = args.includes('--hold-first');
  const sockets = await Promise.all(
    Array.from({ length: count }, async () => {
      const s = dgram.createSocket(socketType(host));
      await new Promise<void>((resolve) => s.bind(0, resolve));
      return s;
    }),
  );
  const problems: string[] = [];
  /** Flows whose echo never came: which socket (its local port) in which round, with the payload sent. */
  const lost: { flow: number; round: number; port: number; message: string; sentAt: string }[] = [];
  let replies = 0;
  const seenPorts = new Set<number>();
  for (let round = 0; round < rounds; round++) {
    const expected = sockets.map((_, i) => `flow ${i} round ${round} ${Math.random().toString(36).slice(2)}`);
    const sentAt = new Date().toISOString();
    const done = sockets.map(
      (s, i) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            problems.push(`flow ${i} round ${round}: no reply within ${timeoutMs} ms`);
            lost.push({ flow: i, round, port: s.address().port, message: expected[i] ?? '', sentAt });
            finish();
          }, timeoutMs);
          const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
            let reply: EchoReply | undefined;
            try {
              reply = JSON.parse(msg.toString('utf8')) as EchoReply;
            } catch {
              problems.push(`flow ${i} round ${round}: unparsable reply`);
            }
            if (rinfo.port !== port || rinfo.address !== host) problems.push(`flow ${i}: reply from ${rinfo.address}:${rinfo.port}`);
            if (reply && reply.message !== expected[i]) problems.push(`flow ${i} round ${round}: got "${reply.message}"`);
            if (reply) seenPorts.add(reply.seen.port);
            replies++;
            finish();
          };
          const finish = (): void => {
            clearTimeout(timer);
            s.off('message', onMessage);
            resolve();
          };
          s.on('message', onMessage);
        }),
    );
    const send = (i: number): void => sockets[i]?.send(expected[i] ?? '', port, host);
    if (holdFirst && round === 0) {
      send(0);
      print({ event: 'first-sent' });
      await new Promise<void>((resolve) => createInterface({ input: process.stdin }).once('line', () => resolve()));
      for (let i = 1; i < count; i++) send(i);
      print({ event: 'all-sent' });
    } else {
      for (let i = 0; i < count; i++) send(i);
    }
    await Promise.all(done);
  }
  // Anything arriving late (a duplicate or someone else's reply) is a problem too.
  for (const [i, s] of sockets.entries()) s.on('message', (m) => problems.push(`flow ${i}: unexpected extra datagram "${m.toString('utf8').slice(0, 80)}"`));
  await new Promise((r) => setTimeout(r, 200));
  for (const s of sockets) s.close();
  print({ ok: problems.length === 0, flows: count, rounds, replies, distinctServerSeenPorts: seenPorts.size, lost: lost.slice(0, 20), problems: problems.slice(0, 20) });
  return problems.length === 0 ? 0 : 1;
}

export async function udpPeer(args: readonly string[]): Promise<number> {
  const bind = option(args, '--bind', '0.0.0.0');
  const port = Number(option(args, '--port', '0'));
  const socket = dgram.createSocket(socketType(bind));
  await new Promise<void>((resolve) => socket.bind(port, bind, resolve));
  socket.on('message', (msg, rinfo) => {
    print({ event: 'datagram', from: { address: rinfo.address, port: rinfo.port }, length: msg.length, sha1: createHash('sha1').update(msg).digest('hex'), text: msg.subarray(0, 2000).toString('utf8') });
  });
  socket.on('error', (e) => print({ event: 'error', message: e.message }));
  print({ event: 'ready', local: socket.address() });
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [verb, host = '', p = '0', ...rest] = line.split(' ');
    if (verb === 'send') socket.send(rest.join(' '), Number(p), host, () => print({ event: 'sent' }));
    if (verb === 'send-hex') socket.send(Buffer.from(rest[0] ?? '', 'hex'), Number(p), host, () => print({ event: 'sent' }));
    if (verb === 'send-size') {
      const data = Buffer.alloc(Number(rest[0] ?? 0));
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
      socket.send(data, Number(p), host, (e) => print(e ? { event: 'error', message: e.message } : { event: 'sent', length: data.length, sha1: createHash('sha1').update(data).digest('hex') }));
    }
  });
  await new Promise<void>((resolve) => lines.once('close', resolve));
  socket.close();
  return 0;
}

export async function dnsQuery(args: readonly string[]): Promise<number> {
  const [host = '', name = ''] = args;
  const type = option(args, '--type', 'A') as DnsType;
  const timeoutMs = Number(option(args, '--timeout-ms', '3000'));
  const id = Math.floor(Math.random() * 0xffff);
  const socket = dgram.createSocket(socketType(host));
  return new Promise<number>((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      print({ ok: false, reason: `no answer within ${timeoutMs} ms` });
      resolve(1);
    }, timeoutMs);
    socket.on('message', (msg, rinfo) => {
      clearTimeout(timer);
      socket.close();
      const answer = decodeDnsResponse(msg);
      print({ ok: answer.id === id && answer.rcode === 0, from: { address: rinfo.address, port: rinfo.port }, ...answer, queryId: id });
      resolve(answer.id === id ? 0 : 1);
    });
    socket.send(encodeDnsQuery(id, name, type), 53, host);
  });
}

/**
 * A SOCKS5 or HTTP CONNECT proxy for tests, run inside a lab namespace (the upstream proxy that
 * tproxy relays through). One JSON line on stdout per request:
 *   {"event":"connect","from":{address,port},"target":{address,port},"result":"ok"|errno}
 *
 *   upstream-proxy-agent socks5|http PORT [--auth USER:PASS] [--early-port P]
 *     --auth        require these credentials (SOCKS5 method 2 / Proxy-Authorization Basic)
 *     --early-port  for CONNECTs to port P: connect to port 81 instead and send "HELLO\n" in the
 *                   same write as the success reply (a destination that speaks first)
 *
 * Written independently of src/core/upstream (it parses what a client sends; the code under test
 * builds it), so the two cannot share a mistake.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { auth: { type: 'string' }, 'early-port': { type: 'string' } } });
const [mode, portText] = positionals;
const auth = values.auth;
const earlyPort = values['early-port'] === undefined ? -1 : Number(values['early-port']);
const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

/** Reads exactly n bytes (or a line) from a socket that is not yet piped. */
class Reader {
  private buffered = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private ended = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.waiting?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.waiting?.();
    });
  }
  private async until(ready: () => number): Promise<Buffer> {
    for (;;) {
      const n = ready();
      if (n >= 0) {
        const out = this.buffered.subarray(0, n);
        this.buffered = this.buffered.subarray(n);
        return out;
      }
      if (this.ended) throw new Error('client closed');
      await new Promise<void>((r) => (this.waiting = r));
    }
  }
  bytes(n: number): Promise<Buffer> {
    return this.until(() => (this.buffered.length >= n ? n : -1));
  }
  head(): Promise<string> {
    return this.until(() => {
      const i = this.buffered.indexOf('\r\n\r\n');
      return i < 0 ? -1 : i + 4;
    }).then((b) => b.toString('latin1'));
  }
  /** What arrived beyond the handshake; the socket is handed over to piping. */
  rest(): Buffer {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    return this.buffered;
  }
}

function dial(target: { address: string; port: number }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: target.address, port: target.port === earlyPort ? 81 : target.port, allowHalfOpen: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function splice(client: net.Socket, reader: Reader, upstream: net.Socket, greeting: Buffer): void {
  client.write(greeting);
  const rest = reader.rest();
  if (rest.length) upstream.write(rest);
  client.pipe(upstream);
  upstream.pipe(client);
  const reset = (other: net.Socket) => (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? other.resetAndDestroy() : other.destroy());
  client.on('error', reset(upstream));
  upstream.on('error', reset(client));
}

async function socks5(client: net.Socket, from: { address: string; port: number }): Promise<void> {
  const r = new Reader(client);
  const [, n = 0] = await r.bytes(2);
  const methods = [...(await r.bytes(n))];
  const want = auth ? 2 : 0;
  if (!methods.includes(want)) {
    client.end(Buffer.from([5, 0xff]));
    print({ event: 'connect', from, result: 'no-method' });
    return;
  }
  client.write(Buffer.from([5, want]));
  if (auth) {
    const [, ulen = 0] = await r.bytes(2);
    const user = (await r.bytes(ulen)).toString();
    const [plen = 0] = await r.bytes(1);
    const pass = (await r.bytes(plen)).toString();
    const ok = `${user}:${pass}` === auth;
    client.write(Buffer.from([1, ok ? 0 : 1]));
    if (!ok) {
      client.end();
      print({ event: 'connect', from, result: 'bad-credentials' });
      return;
    }
  }
  const [, cmd, , atyp] = await r.bytes(4);
  const raw = await r.bytes(atyp === 1 ? 4 : 16);
  const port = (await r.bytes(2)).readUInt16BE(0);
  const address = atyp === 1 ? [...raw].join('.') : (raw.toString('hex').match(/.{4}/g) ?? []).join(':');
  const target = { address: net.isIPv6(address) ? new URL(`http://[${address}]`).hostname.slice(1, -1) : address, port };
  if (cmd !== 1) throw new Error(`command ${cmd}`);
  try {
    const upstream = await dial(target);
    print({ event: 'connect', from, target, result: 'ok' });
    const reply = Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    splice(client, r, upstream, target.port === earlyPort ? Buffer.concat([reply, Buffer.from('HELLO\n')]) : reply);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    print({ event: 'connect', from, target, result: code });
    client.end(Buffer.from([5, code === 'ECONNREFUSED' ? 5 : 1, 0, 1, 0, 0, 0, 0, 0, 0]));
  }
}

async function http(client: net.Socket, from: { address: string; port: number }): Promise<void> {
  const r = new Reader(client);
  const head = await r.head();
  const m = /^CONNECT \[?([0-9a-fA-F:.]+?)\]?:(\d+) HTTP\/1\.1\r\n/.exec(head);
  if (!m) {
    client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  const target = { address: m[1]!, port: Number(m[2]) };
  if (auth && !head.includes(`\r\nProxy-Authorization: Basic ${Buffer.from(auth).toString('base64')}\r\n`)) {
    client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n');
    print({ event: 'connect', from, target, result: 'bad-credentials' });
    return;
  }
  try {
    const upstream = await dial(target);
    print({ event: 'connect', from, target, result: 'ok' });
    const reply = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n');
    splice(client, r, upstream, target.port === earlyPort ? Buffer.concat([reply, Buffer.from('HELLO\n')]) : reply);
  } catch (error) {
    print({ event: 'connect', from, target, result: (error as NodeJS.ErrnoException).code ?? 'error' });
    client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
  }
}

const server = net.createServer({ allowHalfOpen: true }, (client) => {
  const from = { address: client.remoteAddress ?? '', port: client.remotePort ?? 0 };
  client.on('error', () => undefined);
  (mode === 'socks5' ? socks5(client, from) : http(client, from)).catch(() => client.destroy());
});
server.listen({ port: Number(portText), host: '::', ipv6Only: false }, () => print({ event: 'ready' }));
process.on('SIGTERM', () => process.exit(0));

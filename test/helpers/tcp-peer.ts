/**
 * TCP test peers, run inside lab namespaces; every result is a JSON line on stdout.
 *
 *   server --port P     first line from the client selects the behaviour:
 *                         ECHO        echo every byte back; FIN after the client's FIN
 *                         PEER        reply "<address> <port>" (the source the server saw), FIN
 *                         HALFCLOSE n wait for the client's FIN, then send n bytes and FIN
 *                         RESET       reset the connection
 *                         HOLD        reply "OK", keep the connection; report how it ended
 *                         GATE n      hold until n GATE connections are open at once, then reply
 *                                     "go" and FIN to all n (proves n flows were open together)
 *                         STALL n     read nothing more (the sender's bytes back up); reset the
 *                                     connection after n ms (0: never)
 *   client SCENARIO HOST PORT [ARG]
 *                         bulk N      send N bytes after ECHO, FIN, read the echo; sha256 both ways
 *                         trickle N   like bulk, but N pieces of 1 KiB, 50 ms apart (a flow that lasts)
 *                         peer        the address the server saw
 *                         peer-from P the same, connecting from local port P
 *                         halfclose N FIN first, then receive N bytes
 *                         reset       expect the server's reset to arrive as a reset
 *                         hold-reset  HOLD, then reset the connection ourselves
 *                         hold        HOLD, then wait up to ARG ms for the connection to end; how?
 *                         raw         connect, send a line, report how the connection ended
 *                         many N      N concurrent ECHO connections, all open at once
 *                         bulkmany N B  N concurrent bulk B transfers at once; how many came back intact
 *                         gated N G   N concurrent connections sending GATE G
 *                         stall N     STALL N, then 32 MiB (most of it stays unsent); how it ended
 *     --proxy ADDRESS:PORT  (anywhere after `client`) each connection starts with a PROXY v2
 *                         header (TCP) from ADDRESS, port PORT for the first connection, PORT+1 for
 *                         the next...: a client behind a load balancer, for an mmproxy listener
 *   hold-port ADDRESS PORT  (on the router) hold ADDRESS:PORT with a transparent socket bound
 *                         without SO_REUSEADDR, so a proxy's bind to it fails; "ready", then
 *                         wait for SIGTERM
 */
import { createCipheriv, createHash } from 'node:crypto';
import net from 'node:net';
import { encodeProxyHeaderV2 } from '../../src/core/proxy-protocol/v2.js';
import { raiseFileLimit } from '../../src/sys/limits.js';
import { SocketApi } from '../../src/sys/socket.js';

const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};

/** Deterministic bytes (an AES-CTR keystream), so the receiver can check them without a copy. */
function* chunks(total: number, chunkSize = 256 * 1024): Generator<Buffer> {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(chunkSize);
  let sent = 0;
  while (sent < total) {
    const size = Math.min(chunkSize, total - sent);
    sent += size;
    yield cipher.update(zeros.subarray(0, size));
  }
}

function serve(port: number): void {
  let gate: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    let head = Buffer.alloc(0);
    let how = 'open';
    socket.on('error', (e: NodeJS.ErrnoException) => (how = e.code === 'ECONNRESET' ? 'reset' : `error-${e.code ?? ''}`));
    socket.on('end', () => {
      if (how === 'open') how = 'end';
    });
    socket.on('close', () => print({ event: 'closed', peer, how }));
    const onData = (data: Buffer): void => {
      head = Buffer.concat([head, data]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      socket.off('data', onData);
      const [command = '', arg = '0'] = head.subarray(0, nl).toString().split(' ');
      const rest = head.subarray(nl + 1);
      print({ event: 'command', peer, command });
      switch (command) {
        case 'ECHO':
          if (rest.length) socket.write(rest);
          socket.pipe(socket);
          break;
        case 'PEER':
          socket.end(`${peer.address} ${peer.port}\n`);
          break;
        case 'HALFCLOSE':
          socket.resume();
          socket.once('end', () => {
            for (const c of chunks(Number(arg))) socket.write(c);
            socket.end();
          });
          break;
        case 'RESET':
          socket.resetAndDestroy();
          break;
        case 'GATE':
          socket.resume();
          gate.push(socket);
          if (gate.length >= Number(arg)) {
            print({ event: 'gate', released: gate.length });
            for (const g of gate) g.end('go\n');
            gate = [];
          }
          break;
        case 'HOLD':
          socket.write('OK\n');
          socket.resume();
          break;
        case 'STALL':
          socket.pause();
          if (Number(arg) > 0) setTimeout(() => socket.resetAndDestroy(), Number(arg));
          break;
        default:
          socket.end('unknown command\n');
      }
    };
    socket.on('data', onData);
  });
  server.listen({ port, host: '::', ipv6Only: false }, () => print({ event: 'ready', port }));
  process.on('SIGTERM', () => process.exit(0));
}

/** How a client connection ended: 'end' (FIN), 'reset', 'timeout' or another error code. */
function outcome(socket: net.Socket, timeoutMs: number): Promise<{ how: string; received: Buffer }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let done = false;
    const finish = (how: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ how, received: Buffer.concat(parts) });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('data', (d: Buffer) => parts.push(d));
    socket.on('end', () => finish('end'));
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNRESET' ? 'reset' : (e.code ?? 'error')));
  });
}

/** --proxy ADDRESS:PORT: the client each connection's PROXY header names, and the port of the next one. */
let proxied: { address: string; port: number } | undefined;

function connect(host: string, port: number, localPort?: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, allowHalfOpen: true, ...(localPort !== undefined ? { localPort } : {}) });
    if (proxied) {
      const source = { family: 4 as const, address: proxied.address, port: proxied.port++ };
      socket.write(encodeProxyHeaderV2({ command: 'proxy', transport: 'tcp', addresses: { source, destination: { family: 4, address: host, port } } }));
    }
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function client(scenario: string, host: string, port: number, arg: number): Promise<void> {
  const socket = await connect(host, port, scenario === 'peer-from' ? arg : undefined);
  const local = { address: socket.localAddress, port: socket.localPort };
  switch (scenario) {
    case 'bulk':
    case 'trickle': {
      const sent = createHash('sha256');
      const got = createHash('sha256');
      let receivedBytes = 0;
      const ended = new Promise<string>((resolve) => {
        socket.on('data', (d: Buffer) => {
          got.update(d);
          receivedBytes += d.length;
        });
        socket.on('end', () => resolve('end'));
        socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      socket.write('ECHO\n');
      let failed = false;
      void ended.then(() => (failed = true));
      const pieces = scenario === 'bulk' ? chunks(arg) : chunks(arg * 1024, 1024);
      for (const c of pieces) {
        if (scenario === 'trickle') await new Promise((r) => setTimeout(r, 50));
        sent.update(c);
        if (!socket.write(c)) await Promise.race([new Promise((r) => socket.once('drain', r)), ended]);
        if (failed) break;
      }
      socket.end();
      const how = await ended;
      print({ how, local, sentBytes: scenario === 'bulk' ? arg : arg * 1024, receivedBytes, sentSha256: sent.digest('hex'), receivedSha256: got.digest('hex') });
      break;
    }
    case 'peer':
    case 'peer-from': {
      socket.end('PEER\n');
      const r = await outcome(socket, 5000);
      const [address, p] = r.received.toString().trim().split(' ');
      print({ how: r.how, local, seen: { address, port: Number(p) } });
      break;
    }
    case 'halfclose': {
      socket.end(`HALFCLOSE ${arg}\n`);
      const r = await outcome(socket, 10_000);
      const expected = createHash('sha256');
      for (const c of chunks(arg)) expected.update(c);
      print({ how: r.how, receivedBytes: r.received.length, intact: createHash('sha256').update(r.received).digest('hex') === expected.digest('hex') });
      break;
    }
    case 'reset': {
      socket.write('RESET\n');
      print({ how: (await outcome(socket, 5000)).how });
      break;
    }
    case 'hold-reset': {
      socket.write('HOLD\n');
      await new Promise((r) => socket.once('data', r));
      socket.resetAndDestroy();
      print({ how: 'reset-sent', local });
      break;
    }
    case 'hold': {
      socket.write('HOLD\n');
      const r = await outcome(socket, arg);
      print({ how: r.how, local, reply: r.received.toString() });
      break;
    }
    case 'stall': {
      const ended = outcome(socket, 60_000);
      socket.write(`STALL ${arg}\n`);
      let written = 0;
      for (const c of chunks(32 * 1024 * 1024)) {
        socket.write(c);
        written += c.length;
      }
      const r = await ended;
      print({ how: r.how, local, written });
      break;
    }
    case 'raw': {
      socket.write('PEER\n');
      print({ how: (await outcome(socket, 5000)).how });
      break;
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

async function gated(host: string, port: number, count: number, gateSize: number): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: count }, async () => {
      const socket = await connect(host, port);
      socket.write(`GATE ${gateSize}\n`);
      const r = await outcome(socket, 30_000);
      return r.how === 'end' && r.received.toString() === 'go\n' ? 'ok' : r.how;
    }).map((p) => p.catch((e: NodeJS.ErrnoException) => e.code ?? 'error')),
  );
  print({ ok: results.filter((r) => r === 'ok').length, failures: results.filter((r) => r !== 'ok').slice(0, 5) });
}

/** One ECHO transfer of `bytes` both ways at full speed: 'ok' when every byte came back intact, else what went wrong. */
async function bulkOnce(host: string, port: number, bytes: number): Promise<string> {
  const socket = await connect(host, port);
  const sent = createHash('sha256');
  const got = createHash('sha256');
  let received = 0;
  const ended = new Promise<string>((resolve) => {
    socket.on('data', (d: Buffer) => {
      got.update(d);
      received += d.length;
    });
    socket.on('end', () => resolve('end'));
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  let over = false;
  void ended.then(() => (over = true));
  socket.write('ECHO\n');
  for (const c of chunks(bytes, 64 * 1024)) {
    sent.update(c);
    if (!socket.write(c)) await Promise.race([new Promise((r) => socket.once('drain', r)), ended]);
    if (over) break;
  }
  socket.end();
  const how = await ended;
  if (how !== 'end') return how;
  if (received !== bytes) return `short-${received}`;
  return got.digest('hex') === sent.digest('hex') ? 'ok' : 'corrupt';
}

async function bulkMany(host: string, port: number, count: number, bytes: number): Promise<void> {
  const results = await Promise.all(Array.from({ length: count }, () => bulkOnce(host, port, bytes).catch((e: NodeJS.ErrnoException) => e.code ?? 'error')));
  print({ ok: results.filter((r) => r === 'ok').length, failures: results.filter((r) => r !== 'ok').slice(0, 5) });
}

async function many(host: string, port: number, count: number): Promise<void> {
  const sockets: net.Socket[] = [];
  let echoed = 0;
  const failures: string[] = [];
  const deadline = setTimeout(() => {
    print({ opened: sockets.length, echoed, failures: [...failures, 'timeout'] });
    process.exit(1);
  }, 60_000);
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      try {
        const s = await connect(host, port);
        sockets.push(s);
        const payload = `conn-${i}\n`;
        s.write(`ECHO\n${payload}`);
        let buf = '';
        await new Promise<void>((resolve, reject) => {
          s.on('data', (d: Buffer) => {
            buf += d.toString();
            if (buf === payload) resolve();
            else if (buf.length >= payload.length) reject(new Error(`conn ${i} got ${buf}`));
          });
          s.on('error', reject);
        });
        echoed++;
      } catch (error) {
        failures.push(String(error));
      }
    }),
  );
  clearTimeout(deadline);
  const openAtOnce = sockets.filter((s) => !s.destroyed).length;
  for (const s of sockets) s.end();
  print({ opened: sockets.length, echoed, openAtOnce, failures: failures.slice(0, 5) });
}

const [role, ...args] = process.argv.slice(2);
raiseFileLimit();
if (role === 'server') {
  serve(Number(args[args.indexOf('--port') + 1] ?? 81));
} else if (role === 'client') {
  const at = args.indexOf('--proxy');
  if (at >= 0) {
    const [address = '', port = '0'] = (args.splice(at, 2)[1] ?? '').split(':');
    proxied = { address, port: Number(port) };
  }
  const [scenario = '', host = '', port = '0', arg = '0', arg2 = '0'] = args;
  const run =
    scenario === 'many'
      ? many(host, Number(port), Number(arg))
      : scenario === 'bulkmany'
        ? bulkMany(host, Number(port), Number(arg), Number(arg2))
        : scenario === 'gated' ? gated(host, Number(port), Number(arg), Number(arg2)) : client(scenario, host, Number(port), Number(arg));
  run.then(
    () => process.exit(0),
    (error: unknown) => {
      // A reset can arrive before the connect completes in user space: libuv then reports it as the
      // connect error.
      const code = (error as NodeJS.ErrnoException).code;
      print(code === 'ECONNRESET' ? { how: 'reset', during: 'connect' } : { how: 'connect-failed', error: code ?? String(error) });
      process.exit(0);
    },
  );
} else if (role === 'hold-port') {
  const [address = '', port = '0'] = args;
  const sockets = new SocketApi();
  const fd = sockets.open({ family: address.includes(':') ? 6 : 4, transport: 'tcp', transparent: true });
  sockets.bind(fd, { family: address.includes(':') ? 6 : 4, address, port: Number(port) });
  print({ event: 'ready', address, port: Number(port) });
  process.on('SIGTERM', () => {
    sockets.close(fd);
    process.exit(0);
  });
  setInterval(() => undefined, 60_000);
} else {
  process.stderr.write('usage: tcp-peer server --port P | tcp-peer client SCENARIO HOST PORT [ARG]\n');
  process.exit(2);
}

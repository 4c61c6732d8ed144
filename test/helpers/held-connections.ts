// Connections held open through an mmproxy listener (argv: host port address:port): each starts
// with a PROXY v2 header from ADDRESS (port PORT, then PORT+1, ...) and HOLD for the tcp-peer
// server behind it, which answers OK and keeps it. Commands on stdin, one result line each:
//   open N   open N connections one after another: {"event":"opened","held":H,"refused":R,"how":[...]}
//            (held: the backend's OK came; refused: reset or ended before it, how: each refusal's way)
//   close N  reset N held connections (the backend holds its side open after a FIN):
//            {"event":"closed","closed":N,"open":M}
// Ends (resetting what is open) when stdin closes.
import net from 'node:net';
import readline from 'node:readline';
import { encodeProxyHeaderV2 } from '../../src/core/proxy-protocol/v2.js';

const [host = '', port = '0', from = ''] = process.argv.slice(2);
const [address = '', first = '0'] = from.split(':');
let next = Number(first);
const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);
const held: net.Socket[] = [];

/** One connection: 'held' once the backend's OK came, else how it ended before. */
function open(): Promise<string> {
  return new Promise((resolve) => {
    const source = { family: 4 as const, address, port: next++ };
    const header = encodeProxyHeaderV2({ command: 'proxy', transport: 'tcp', addresses: { source, destination: { family: 4, address: host, port: Number(port) } } });
    const socket = net.connect({ host, port: Number(port) });
    let reply = '';
    let done = false;
    const finish = (how: string): void => {
      if (done) return;
      done = true;
      if (how === 'held') held.push(socket);
      else socket.destroy();
      resolve(how);
    };
    socket.write(Buffer.concat([header, Buffer.from('HOLD\n')]));
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply === 'OK\n') finish('held');
    });
    socket.on('end', () => finish('end'));
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : (e.code ?? 'error')));
    setTimeout(() => finish('timeout'), 10_000).unref();
  });
}

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  const [word = '', n = '0'] = line.trim().split(' ');
  queue = queue.then(async () => {
    if (word === 'open') {
      const how: string[] = [];
      for (let i = 0; i < Number(n); i++) how.push(await open());
      const refused = how.filter((h) => h !== 'held');
      print({ event: 'opened', held: how.length - refused.length, refused: refused.length, how: refused });
    } else if (word === 'close') {
      const closing = held.splice(0, Number(n));
      for (const s of closing) s.resetAndDestroy();
      print({ event: 'closed', closed: closing.length, open: held.length });
    }
  });
});
lines.on('close', () => {
  for (const s of held) s.resetAndDestroy();
  process.exit(0);
});

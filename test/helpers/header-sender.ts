// Sends bytes to HOST PORT (argv: host port hex [delayMs] [end]): all at once, or one byte every
// delayMs, then half-closes when `end` is given; then waits (at most 20 s) for the peer to end or reset the connection. Prints one JSON line:
// {"how":"end"|"reset"|"timeout","received":"<text>","sentBytes":N}.
import net from 'node:net';

const [host = '', port = '0', hex = '', delay = '0', finish = ''] = process.argv.slice(2);
const bytes = Buffer.from(hex, 'hex');
const delayMs = Number(delay);
const socket = net.connect({ host, port: Number(port) });
let received = '';
let sentBytes = 0;
const done = (how: string): void => {
  process.stdout.write(`${JSON.stringify({ how, received, sentBytes })}\n`);
  process.exit(0);
};
setTimeout(() => done('timeout'), 20_000).unref();
socket.on('data', (d) => (received += d.toString('latin1')));
socket.on('end', () => done('end'));
socket.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : (e.code ?? 'error')));
socket.on('connect', () => {
  if (delayMs <= 0) {
    socket.write(bytes);
    sentBytes = bytes.length;
    if (finish === 'end') socket.end();
    return;
  }
  const timer = setInterval(() => {
    if (sentBytes >= bytes.length || socket.destroyed) return void clearInterval(timer);
    socket.write(bytes.subarray(sentBytes, sentBytes + 1));
    sentBytes++;
  }, delayMs);
});

// A client behind a load balancer, for mmproxy tests (argv: host port hex): connects, sends the
// bytes (a PROXY header and what follows), then writes each line read on stdin to the connection.
// Prints one JSON line per chunk received ({"data":"..."}), then {"event":"end"|"reset"|...} when
// the connection ends; exits then, or when stdin closes (the connection is ended first).
import net from 'node:net';
import readline from 'node:readline';

const [host = '', port = '0', hex = ''] = process.argv.slice(2);
const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);
const socket = net.connect({ host, port: Number(port) }, () => {
  socket.write(Buffer.from(hex, 'hex'));
  print({ event: 'connected' });
});
socket.on('data', (d) => print({ data: d.toString('latin1') }));
socket.on('end', () => {
  print({ event: 'end' });
  process.exit(0);
});
socket.on('error', (e: NodeJS.ErrnoException) => {
  print({ event: e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : (e.code ?? 'error') });
  process.exit(0);
});
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => socket.write(`${line}\n`));
lines.on('close', () => socket.end());
setTimeout(() => process.exit(0), 60_000).unref();

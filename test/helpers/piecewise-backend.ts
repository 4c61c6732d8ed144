// A backend that answers each request in small pieces with Nagle on (no TCP_NODELAY), as many
// simple servers do: its second piece waits in its kernel until the first is acknowledged, so a
// peer that delays its ACKs holds the reply up by its delayed-ACK timer (40 ms or more).
// argv: host port pieces. For each connection, once its request (up to a blank line) is in: the
// pieces ("piece 1\n" ...), its FIN 200 ms later (a FIN would push the pieces out at once: Nagle
// holds them only while nothing else is sent), and one JSON line {"segmentsIn":N,"delayedAcks":M}:
// N the segments its socket had received with the request (TCP_INFO tcpi_segs_in: the SYN, the
// handshake's ACK unless it came with the request, and the request), M the delayed-ACK timers that
// fired in this network namespace while the pieces went (TcpExt DelayedACKs: the peer's ACK of a
// piece left to its timer; nothing else in the namespace should have one pending then).
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { loadLibc } from '../../src/sys/libc.js';
import { segmentsIn } from './tcp-info.js';

const [host = '127.0.0.1', port = '0', pieces = '3'] = process.argv.slice(2);
const libc = loadLibc();

/** The descriptor under a net.Socket (Linux: its handle's fd). */
const fdOf = (socket: net.Socket): number => (socket as unknown as { _handle: { fd: number } })._handle.fd;

function delayedAcks(): number {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]!.split(' ');
  return Number(lines[1]!.split(' ')[names.indexOf('DelayedACKs')]);
}

const server = net.createServer({ noDelay: false }, (socket) => {
  socket.setNoDelay(false);
  let request = '';
  socket.on('data', (d) => {
    request += d.toString('latin1');
    if (!request.includes('\r\n\r\n')) return;
    const segments = segmentsIn(libc, fdOf(socket));
    const before = delayedAcks();
    for (let i = 1; i <= Number(pieces); i++) socket.write(`piece ${i}\n`);
    setTimeout(() => {
      process.stdout.write(`${JSON.stringify({ segmentsIn: segments, delayedAcks: delayedAcks() - before })}\n`);
      socket.end();
    }, 200);
  });
  socket.on('error', () => undefined);
});
server.listen({ host, port: Number(port) }, () => process.stdout.write(`${JSON.stringify({ listening: true })}\n`));
process.once('SIGTERM', () => process.exit(0));

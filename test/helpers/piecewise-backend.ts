// A backend that answers each request in small pieces with Nagle on (no TCP_NODELAY), as many
// simple servers do: its second piece waits in its kernel until the first is acknowledged, so a
// peer that delays its ACKs holds the reply up by its delayed-ACK timer (40 ms or more).
// argv: host port pieces. For each connection, once its request (up to a blank line) is in: one
// JSON line {"segmentsIn":N} (segments its socket had received then, TCP_INFO tcpi_segs_in: the
// SYN, the handshake's ACK unless it came with the request, and the request), then the pieces
// ("piece 1\n" ...), and its FIN 200 ms later (a FIN would push the pieces out at once: Nagle
// holds them only while nothing else is sent).
import net from 'node:net';
import * as C from '../../src/core/net/constants.js';
import { loadLibc } from '../../src/sys/libc.js';

const TCP_INFO = 11;
const TCPI_SEGS_IN = 140;
const [host = '127.0.0.1', port = '0', pieces = '3'] = process.argv.slice(2);
const libc = loadLibc();

function segmentsIn(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
  const info = Buffer.alloc(232);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(info.length, 0);
  if (libc.getsockopt(fd, C.IPPROTO_TCP, TCP_INFO, info, length) !== 0) return -1;
  return info.readUInt32LE(TCPI_SEGS_IN);
}

const server = net.createServer({ noDelay: false }, (socket) => {
  socket.setNoDelay(false);
  let request = '';
  socket.on('data', (d) => {
    request += d.toString('latin1');
    if (!request.includes('\r\n\r\n')) return;
    process.stdout.write(`${JSON.stringify({ segmentsIn: segmentsIn(socket) })}\n`);
    for (let i = 1; i <= Number(pieces); i++) socket.write(`piece ${i}\n`);
    setTimeout(() => socket.end(), 200);
  });
  socket.on('error', () => undefined);
});
server.listen({ host, port: Number(port) }, () => process.stdout.write(`${JSON.stringify({ listening: true })}\n`));
process.once('SIGTERM', () => process.exit(0));

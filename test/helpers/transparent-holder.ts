// Holds one TCP connection from an address and port this host need not have (IP_TRANSPARENT and
// IP_FREEBIND, as mmproxy's backend socket binds a client's), so a test can find them taken
// (argv: from-address from-port to-address to-port reuse|exclusive). With `reuse` (SO_REUSEADDR) a
// later transparent bind with SO_REUSEADDR succeeds and its connect to the same destination meets
// EADDRNOTAVAIL (the four-tuple is this connection's); with `exclusive` that bind meets EADDRINUSE.
// Prints {"event":"connected"} or {"event":"error","code":"..."}; keeps the connection until stdin ends.
import net from 'node:net';
import { SocketApi } from '../../src/sys/socket.js';

const [fromAddress = '', fromPort = '0', toAddress = '', toPort = '0', mode = 'reuse'] = process.argv.slice(2);
const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);
const family = net.isIPv4(fromAddress) ? 4 : 6;
const sockets = new SocketApi();
const fd = sockets.open({ family, transport: 'tcp', transparent: true, freebind: true, reuseAddress: mode === 'reuse' });
sockets.bind(fd, { family, address: fromAddress, port: Number(fromPort) });
const socket = new net.Socket({ fd, readable: true, writable: true });
socket.on('error', (error: NodeJS.ErrnoException) => {
  print({ event: 'error', code: error.code ?? error.message });
  process.exit(1);
});
socket.connect({ host: toAddress, port: Number(toPort) }, () => print({ event: 'connected' }));
process.stdin.resume();
process.stdin.once('end', () => {
  socket.destroy();
  process.exit(0);
});

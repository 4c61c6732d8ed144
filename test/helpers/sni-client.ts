/**
 * Run in a lab namespace: connect to HOST PORT, send a TLS ClientHello whose server_name is NAME
 * (any bytes, also ones no DNS name may hold), print {"event":"sent"}, then keep the connection
 * open (reading and dropping what comes back) until killed or the peer closes.
 */
import net from 'node:net';
import { clientHelloMessage, inRecords, serverNameExtension } from './client-hello.js';

const [host, port, name] = process.argv.slice(2);
if (host === undefined || port === undefined || name === undefined) {
  process.stderr.write('usage: sni-client HOST PORT NAME\n');
  process.exit(2);
}
const socket = net.connect({ host, port: Number(port) }, () => {
  socket.write(inRecords(clientHelloMessage({ extensions: [serverNameExtension({ name })] })), () => process.stdout.write(`${JSON.stringify({ event: 'sent' })}\n`));
});
socket.on('data', () => undefined);
socket.on('error', (e) => process.stdout.write(`${JSON.stringify({ event: 'error', code: (e as NodeJS.ErrnoException).code })}\n`));
socket.on('close', () => process.exit(0));

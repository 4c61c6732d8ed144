// Two UDP peers for the mmproxy UDP test (argv[2] the role):
//   echo PORT [ADDR4 ADDR6]
//                        answers every datagram on ADDR4:PORT and [ADDR6]:PORT (default 0.0.0.0, ::) with
//                        "<source address>:<source port>|<payload>" (what the backend saw); prints
//                        {"type":"ready"} once both are bound, {"type":"seen","from":"ADDR:PORT"} for each
//                        datagram, and {"type":"send-error","code":...} when an answer cannot be sent.
//                        Ends on SIGTERM or stdin's end.
//   send HOST PORT EXPECTED HEX...
//                        sends each datagram (hex) to HOST:PORT from one socket, then waits (at most
//                        10 s) for EXPECTED replies; prints {"replies":[text...]} and exits.
import dgram from 'node:dgram';
import net from 'node:net';

const [role = '', ...rest] = process.argv.slice(2);
if (role === 'echo') {
  const [portText = '0', address4 = '0.0.0.0', address6 = '::'] = rest;
  const port = Number(portText);
  const sockets = [dgram.createSocket('udp4'), dgram.createSocket({ type: 'udp6', ipv6Only: true })];
  let bound = 0;
  for (const [i, s] of sockets.entries()) {
    s.on('message', (payload, from) => {
      process.stdout.write(`${JSON.stringify({ type: 'seen', from: `${from.address}:${from.port}` })}\n`);
      s.send(Buffer.concat([Buffer.from(`${from.address}:${from.port}|`), payload]), from.port, from.address, (error) => {
        if (error) process.stdout.write(`${JSON.stringify({ type: 'send-error', code: (error as NodeJS.ErrnoException).code })}\n`);
      });
    });
    s.bind(port, i === 0 ? address4 : address6, () => {
      if (++bound === sockets.length) process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);
    });
  }
  const stop = (): void => {
    for (const s of sockets) s.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.stdin.resume();
  process.stdin.once('end', stop);
} else if (role === 'send') {
  const [host = '', port = '0', expected = '0', ...hex] = rest;
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  const replies: string[] = [];
  const done = (): void => {
    process.stdout.write(`${JSON.stringify({ replies })}\n`);
    process.exit(0);
  };
  setTimeout(done, 10_000).unref();
  socket.on('message', (m) => {
    replies.push(m.toString('latin1'));
    if (replies.length >= Number(expected)) done();
  });
  socket.bind(0, () => {
    let sent = 0;
    for (const h of hex) {
      socket.send(Buffer.from(h, 'hex'), Number(port), host, () => {
        if (++sent === hex.length && Number(expected) === 0) done();
      });
    }
  });
} else {
  process.stderr.write(`udp-peers: unknown role "${role}" (echo | send)\n`);
  process.exit(2);
}

// A SOCKS5 server written for the tests (run in a lab namespace), for what real servers will not do
// on request. argv: ADDRESS PORT MODE; prints {"event":"ready"} then one JSON line per event.
//   zero     answers UDP ASSOCIATE with 0.0.0.0:RELAY (the address the client reached it on) and
//            relays: unwraps each datagram to its destination, wraps every datagram its external
//            socket receives (from anyone: a full cone) with the sender in the header. Before each
//            real reply it sends a copy with FRAG=1, which the client must drop.
//   named    as zero, but the header of each reply names its sender as echo.example (ATYP 3), and
//            no fragment is sent.
//   refuse   answers UDP ASSOCIATE with REP=7 (command not supported) and closes.
//   garbage  answers the greeting with bytes that are not SOCKS5.
//   silent   accepts the connection and never answers.
import dgram from 'node:dgram';
import net from 'node:net';

const [address = '0.0.0.0', portText = '1080', mode = 'zero'] = process.argv.slice(2);
const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

function encodeAddress(host: string, port: number): Buffer {
  const v4 = net.isIPv4(host);
  const bytes = v4 ? Buffer.from(host.split('.').map(Number)) : ipv6Bytes(host);
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return Buffer.concat([Buffer.of(v4 ? 1 : 4), bytes, p]);
}

function ipv6Bytes(host: string): Buffer {
  const [head = '', tail = ''] = host.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => [(parseInt(g, 16) >> 8) & 0xff, parseInt(g, 16) & 0xff]));
}

function decodeAddress(b: Buffer, at: number): { host: string; port: number; end: number } | undefined {
  if (b[at] === 1 && b.length >= at + 7) return { host: [...b.subarray(at + 1, at + 5)].join('.'), port: b.readUInt16BE(at + 5), end: at + 7 };
  if (b[at] === 4 && b.length >= at + 19) {
    const g: string[] = [];
    for (let i = 0; i < 8; i++) g.push(b.readUInt16BE(at + 1 + i * 2).toString(16));
    return { host: g.join(':'), port: b.readUInt16BE(at + 17), end: at + 19 };
  }
  return undefined;
}

const family = net.isIPv6(address) ? 'udp6' : 'udp4';
const server = net.createServer((conn) => {
  let stage: 'greeting' | 'request' = 'greeting';
  let buffered = Buffer.alloc(0);
  conn.on('error', () => undefined);
  conn.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (stage === 'greeting') {
      if (buffered.length < 2 || buffered.length < 2 + (buffered[1] ?? 0)) return;
      buffered = buffered.subarray(2 + (buffered[1] ?? 0));
      if (mode === 'silent') return print({ event: 'greeting', silent: true });
      if (mode === 'garbage') {
        conn.write('HTTP/1.1 400 Bad Request\r\n\r\n');
        print({ event: 'garbage-sent' });
        return;
      }
      conn.write(Buffer.of(5, 0));
      stage = 'request';
    }
    if (stage === 'request') {
      const dst = decodeAddress(buffered, 3);
      if (!dst) return;
      buffered = Buffer.alloc(0);
      print({ event: 'request', command: chunk[1], client: { host: dst.host, port: dst.port } });
      if (mode === 'refuse') {
        conn.end(Buffer.concat([Buffer.of(5, 7, 0), encodeAddress('0.0.0.0', 0)]));
        return;
      }
      associate(conn);
    }
  });
});

/** UDP ASSOCIATE: a relay socket per association, answered as 0.0.0.0:PORT. */
function associate(conn: net.Socket): void {
  const relay = dgram.createSocket(family);
  let client: { address: string; port: number } | undefined;
  relay.on('message', (msg, from) => {
    const fromClient = from.address === conn.remoteAddress?.replace(/^::ffff:/, '') && (client === undefined || client.port === from.port);
    if (fromClient) {
      client = { address: from.address, port: from.port };
      const dst = msg[2] === 0 ? decodeAddress(msg, 3) : undefined;
      if (!dst) return print({ event: 'bad-datagram' });
      print({ event: 'relay-out', destination: { address: dst.host, port: dst.port } });
      relay.send(msg.subarray(dst.end), dst.port, dst.host);
      return;
    }
    if (!client) return;
    const port = Buffer.alloc(2);
    port.writeUInt16BE(from.port);
    const name = Buffer.from('echo.example');
    const address = mode === 'named' ? Buffer.concat([Buffer.of(3, name.length), name, port]) : encodeAddress(from.address, from.port);
    const header = Buffer.concat([Buffer.of(0, 0, 0), address]);
    if (mode !== 'named') {
      const fragment = Buffer.from(header);
      fragment[2] = 1;
      relay.send(Buffer.concat([fragment, msg]), client.port, client.address);
    }
    relay.send(Buffer.concat([header, msg]), client.port, client.address);
    print({ event: 'relay-in', from: { address: from.address, port: from.port } });
  });
  relay.bind(0, family === 'udp4' ? '0.0.0.0' : '::', () => {
    const port = relay.address().port;
    print({ event: 'associated', relayPort: port });
    conn.write(Buffer.concat([Buffer.of(5, 0, 0), encodeAddress(family === 'udp4' ? '0.0.0.0' : '::', port)]));
  });
  conn.on('close', () => relay.close());
}

server.listen(Number(portText), address, () => print({ event: 'ready' }));

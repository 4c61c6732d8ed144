// Reading a PROXY header off a real loopback connection: a header split over many reads is put
// together and the bytes after it are handed back; garbage is refused at once; a stream that ends
// inside the header is 'truncated'; a header too slow is cut at the deadline.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HeaderRejected, readProxyHeader } from '../../../src/dataplane/mmproxy/header-reader.js';

const LIMITS = { maxV2Bytes: 256 };

describe('readProxyHeader (loopback)', () => {
  let server: net.Server;
  let accepted: ((socket: net.Socket) => void) | undefined;
  before(async () => {
    server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => accepted?.(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  after(() => server.close());

  /** Connect, run `send` on the client side, and read the header on the server side. */
  const read = async (send: (client: net.Socket) => Promise<void> | void, timeoutMs = 2000) => {
    const serverSide = new Promise<net.Socket>((resolve) => (accepted = resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.on('error', () => undefined);
    const socket = await serverSide;
    const result = readProxyHeader(socket, LIMITS, timeoutMs).then(
      (r) => r,
      (e: unknown) => e,
    );
    await send(client);
    const out = await result;
    client.destroy();
    socket.destroy();
    return out;
  };

  it('puts together a header sent a byte at a time and keeps the bytes after it', async () => {
    const text = 'PROXY TCP4 192.0.2.1 192.0.2.2 40000 80\r\nGET / HTTP/1.0\r\n\r\n';
    const r = await read(async (c) => {
      for (const ch of text.slice(0, 40)) {
        c.write(ch);
        await new Promise((t) => setTimeout(t, 2));
      }
      c.write(text.slice(40)); // the header's last byte and the request in one read
    });
    assert.ok(!(r instanceof Error));
    const { header, early } = r as Awaited<ReturnType<typeof readProxyHeader>>;
    assert.deepEqual(header.addresses?.source, { family: 4, address: '192.0.2.1', port: 40000 });
    assert.equal(early.toString(), 'GET / HTTP/1.0\r\n\r\n');
  });

  for (const [what, send, reason] of [
    ['garbage', (c: net.Socket) => void c.write('GET / HTTP/1.1\r\n'), 'bad-signature'],
    ['an end inside the header', (c: net.Socket) => void c.end('PROXY TCP4 192.0.2.1'), 'truncated'],
    ['an end before any byte', (c: net.Socket) => void c.end(), 'closed-before-header'],
    ['a header that never completes', (c: net.Socket) => void c.write('PROXY TCP'), 'header-timeout'],
  ] as const) {
    it(`refuses ${what} as ${reason}`, async () => {
      const r = await read(send, 300);
      assert.ok(r instanceof HeaderRejected);
      assert.equal(r.reason, reason);
    });
  }
});

/**
 * ClientHellos for the sniffer tests: real ones from Node's TLS stack (OpenSSL) written into a
 * stream that goes nowhere, and hand-built ones for the shapes real clients do not send.
 */
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';

/** The first bytes a Node (OpenSSL) TLS client sends: its ClientHello record(s). */
export async function realClientHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let done: () => void = () => {};
  const written = new Promise<void>((resolve) => (done = resolve));
  const wire = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
      done();
    },
  });
  const socket = tls.connect({ ...options, socket: wire });
  socket.on('error', () => {});
  await written;
  socket.destroy();
  return Buffer.concat(chunks);
}

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const vector16 = (data: Buffer): Buffer => Buffer.concat([u16(data.length), data]);

export function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), vector16(data)]);
}

/** A server_name extension with the given entries (name_type 0 is host_name). */
export function serverNameExtension(...entries: ReadonlyArray<{ readonly type?: number; readonly name: Buffer | string }>): Buffer {
  const list = Buffer.concat(entries.map(({ type = 0, name }) => Buffer.concat([Buffer.of(type), vector16(Buffer.from(name as string, 'latin1'))])));
  return extension(0, vector16(list));
}

export interface ClientHelloParts {
  readonly sessionId?: Buffer;
  readonly cipherSuites?: Buffer;
  readonly compression?: Buffer;
  /** Whole extensions, in order; undefined leaves the extensions block out altogether. */
  readonly extensions?: readonly Buffer[];
}

/** A ClientHello handshake message (type 1, 24-bit length, body). */
export function clientHelloMessage(parts: ClientHelloParts): Buffer {
  const { sessionId = Buffer.alloc(32, 7), cipherSuites = Buffer.of(0x13, 0x01, 0x13, 0x02), compression = Buffer.of(0), extensions } = parts;
  const body = Buffer.concat([
    Buffer.of(3, 3),
    Buffer.alloc(32, 0xab),
    Buffer.of(sessionId.length),
    sessionId,
    vector16(cipherSuites),
    Buffer.of(compression.length),
    compression,
    extensions === undefined ? Buffer.alloc(0) : vector16(Buffer.concat(extensions)),
  ]);
  return Buffer.concat([Buffer.of(1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff), body]);
}

/** Handshake bytes in TLS records of at most `size` bytes each. */
export function inRecords(handshake: Buffer, size = 1 << 14, version = 0x0301): Buffer {
  const records: Buffer[] = [];
  for (let at = 0; at < handshake.length; at += size) {
    const fragment = handshake.subarray(at, at + size);
    records.push(Buffer.concat([Buffer.of(22), u16(version), u16(fragment.length), fragment]));
  }
  return Buffer.concat(records);
}

/** A padding extension (RFC 7685) of `length` zero bytes. */
export const padding = (length: number): Buffer => extension(21, Buffer.alloc(length));

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { clientInitialKeys, contiguousCrypto, decryptClientInitial, QuicClientHelloAssembly, sniffQuicServerName } from '../../../src/core/sniff/quic-initial.js';
import { sniffClientHelloMessage } from '../../../src/core/sniff/tls-client-hello.js';
import { clientHelloMessage, extension, padding, serverNameExtension } from '../../helpers/client-hello.js';
import { RFC9001_CLIENT_CRYPTO_FRAME, RFC9001_CLIENT_INITIAL, RFC9001_CLIENT_KEYS, RFC9001_DCID, cryptoFrame, protectClientInitial } from '../../helpers/rfc9001.js';
import { PROPERTY_RUNS, assertSniffResult } from '../../helpers/sniff.js';

const NONE = { kind: 'none' };
const quicName = (name: string): unknown => ({ kind: 'name', name, protocol: 'quic' });
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const DCID = Buffer.from('0011223344556677', 'hex');
const hello = (name: string, pad = 100): Buffer => clientHelloMessage({ extensions: [padding(pad), serverNameExtension({ name })] });
/** The RFC 9001 A.3 server Initial: not a client's, so its keys do not open it. */
const SERVER_INITIAL = Buffer.from(
  'cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc42158407dd074ee',
  'hex',
);

describe('QUIC v1 client Initial SNI', () => {
  it('derives the RFC 9001 A.1 client keys from the DCID', () => {
    const keys = clientInitialKeys(RFC9001_DCID);
    assert.deepEqual({ key: hex(keys.key), iv: hex(keys.iv), hp: hex(keys.hp) }, RFC9001_CLIENT_KEYS);
  });

  it('reads example.com from the RFC 9001 A.2 client Initial', () => {
    assert.deepEqual(sniffQuicServerName(RFC9001_CLIENT_INITIAL), quicName('example.com'));
  });

  it('the test encoder rebuilds the A.2 packet byte for byte (so packets it builds are real ones)', () => {
    assert.equal(hex(protectClientInitial(RFC9001_DCID, RFC9001_CLIENT_CRYPTO_FRAME, { packetNumber: 2 })), hex(RFC9001_CLIENT_INITIAL));
  });

  it('every truncation of the A.2 packet, and every single flipped byte after the DCID, is none', () => {
    for (let length = 0; length < RFC9001_CLIENT_INITIAL.length; length++) assert.deepEqual(sniffQuicServerName(RFC9001_CLIENT_INITIAL.subarray(0, length)), NONE, `${length} bytes`);
    for (let at = 14; at < RFC9001_CLIENT_INITIAL.length; at += 37) {
      const copy = Buffer.from(RFC9001_CLIENT_INITIAL);
      copy[at] = copy[at]! ^ 0x01;
      assert.deepEqual(sniffQuicServerName(copy), NONE, `byte ${at} flipped`);
    }
  });

  const table: ReadonlyArray<readonly [string, Uint8Array, unknown]> = [
    ['the A.3 server Initial', SERVER_INITIAL, NONE],
    ['QUIC version 2', Buffer.concat([Buffer.of(0xc0, 0x6b, 0x33, 0x43, 0xcf), RFC9001_CLIENT_INITIAL.subarray(5)]), NONE],
    ['a version negotiation packet', Buffer.from('c000000000088394c8f03e51570800000001', 'hex'), NONE],
    ['a short-header packet', Buffer.concat([Buffer.of(0x40), RFC9001_CLIENT_INITIAL.subarray(1)]), NONE],
    ['a 0-RTT packet type', Buffer.concat([Buffer.of(0xd0), RFC9001_CLIENT_INITIAL.subarray(1)]), NONE],
    ['a DCID length of 21', Buffer.concat([RFC9001_CLIENT_INITIAL.subarray(0, 5), Buffer.of(21), RFC9001_CLIENT_INITIAL.subarray(6)]), NONE],
    ['a DNS query', Buffer.from('12340100000100000000000003777777076578616d706c6503636f6d0000010001', 'hex'), NONE],
    ['nothing', Buffer.alloc(0), NONE],
    ['an Initial with a token and a SCID', protectClientInitial(DCID, cryptoFrame(0, hello('token.example')), { scid: Buffer.alloc(8, 9), token: Buffer.alloc(40, 7) }), quicName('token.example')],
    ['an Initial followed by a coalesced packet', Buffer.concat([protectClientInitial(DCID, cryptoFrame(0, hello('coalesced.example'))), Buffer.from('e00000000108', 'hex')]), quicName('coalesced.example')],
    ['PING, ACK with a range, and ACK-ECN frames before CRYPTO', protectClientInitial(DCID, Buffer.concat([Buffer.from('01' + '02050001010103' + '03050001000102030404', 'hex'), cryptoFrame(0, hello('frames.example'))])), quicName('frames.example')],
    ['a CONNECTION_CLOSE frame, then CRYPTO', protectClientInitial(DCID, Buffer.concat([Buffer.from('1c0a0003616263', 'hex'), cryptoFrame(0, hello('close.example'))])), quicName('close.example')],
    ['a STREAM frame (not allowed in Initial)', protectClientInitial(DCID, Buffer.concat([Buffer.from('080000', 'hex'), cryptoFrame(0, hello('stream.example'))])), NONE],
    ['a CRYPTO frame longer than the payload', protectClientInitial(DCID, Buffer.from('060044ff61', 'hex')), NONE],
    ['a hostile SNI', protectClientInitial(DCID, cryptoFrame(0, hello('evil.example\r\nx'))), NONE],
    ['a ClientHello without SNI', protectClientInitial(DCID, cryptoFrame(0, clientHelloMessage({ extensions: [padding(10)] }))), NONE],
    ['CRYPTO not starting at offset 0', protectClientInitial(DCID, cryptoFrame(10, hello('late.example'))), NONE],
  ];
  for (const [what, datagram, expected] of table) {
    it(`${what}: ${JSON.stringify(expected)}`, () => assert.deepEqual(sniffQuicServerName(datagram), expected));
  }

  it('puts CRYPTO frames back in order by offset, overlaps included', () => {
    const ch = hello('scattered.example', 300);
    const frames = [cryptoFrame(200, ch.subarray(200)), Buffer.of(0x01), cryptoFrame(0, ch.subarray(0, 120)), Buffer.of(0, 0), cryptoFrame(100, ch.subarray(100, 250))];
    assert.deepEqual(sniffQuicServerName(protectClientInitial(DCID, Buffer.concat(frames))), quicName('scattered.example'));
  });

  it('a ClientHello split over two Initial datagrams is none from each alone; their CRYPTO pieces together give the name', () => {
    const ch = hello('two-packets.example', 1500);
    const first = protectClientInitial(DCID, cryptoFrame(0, ch.subarray(0, 1000)), { packetNumber: 0 });
    const second = protectClientInitial(DCID, cryptoFrame(1000, ch.subarray(1000)), { packetNumber: 1 });
    assert.deepEqual(sniffQuicServerName(first), NONE);
    assert.deepEqual(sniffQuicServerName(second), NONE);
    const pieces = [...decryptClientInitial(first)!.crypto, ...decryptClientInitial(second)!.crypto];
    assert.deepEqual(sniffClientHelloMessage(contiguousCrypto(pieces), 'quic'), quicName('two-packets.example'));
  });

  it('property: random bytes, mutated RFC packets and Initial-looking headers give a SniffResult, never a throw', () => {
    const mutated = fc.array(fc.tuple(fc.nat(RFC9001_CLIENT_INITIAL.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
      const copy = Buffer.from(RFC9001_CLIENT_INITIAL);
      for (const [at, value] of edits) copy[at] = value;
      return copy;
    });
    const headerEdits = fc.tuple(fc.nat(40), fc.integer({ min: 0, max: 255 }), fc.nat(1300)).map(([at, value, cut]) => {
      const copy = Buffer.from(RFC9001_CLIENT_INITIAL);
      copy[at] = value;
      return copy.subarray(0, cut);
    });
    const initialLooking = fc.uint8Array({ maxLength: 1300 }).map((rest) => Buffer.concat([Buffer.from('c000000001', 'hex'), rest]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 1500 }), mutated, headerEdits, initialLooking), (datagram) => assertSniffResult(sniffQuicServerName(datagram), 'quic')),
      { seed: 0x15f1, numRuns: PROPERTY_RUNS },
    );
  });

  it('property: any name, CRYPTO split into frames in any order, with PADDING and PING between, gives the name', () => {
    const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,15}$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 4 }), fc.uint8Array({ minLength: 1, maxLength: 20 }), fc.array(fc.nat(400), { maxLength: 5 }), fc.nat(300), fc.integer(), (labels, dcid, cuts, pad, shuffle) => {
        const name = `${labels.join('.')}.example`;
        const ch = hello(name, pad);
        const bounds = [0, ...cuts.map((c) => c % ch.length).sort((a, b) => a - b), ch.length];
        const frames = bounds.slice(1).map((end, i) => Buffer.concat([cryptoFrame(bounds[i]!, ch.subarray(bounds[i], end)), Buffer.of(i % 2)]));
        const order = frames.map((f, i) => ({ f, k: Math.imul(i + 1, shuffle | 1) >>> 0 })).sort((a, b) => a.k - b.k);
        assert.deepEqual(sniffQuicServerName(protectClientInitial(dcid, Buffer.concat(order.map((o) => o.f)))), quicName(name));
      }),
      { seed: 0x15f2, numRuns: 300 },
    );
  });

});

/** A Handshake-type long header packet (not opened, skipped by its length): type 2, version 1. */
const handshakePacket = (dcid: Uint8Array, bodyLength = 40): Buffer => Buffer.concat([Buffer.of(0xe0, 0, 0, 0, 1, dcid.length), dcid, Buffer.of(0), Buffer.of(0x40 | (bodyLength >> 8), bodyLength & 0xff), Buffer.alloc(bodyLength, 0x5a)]);
/** A ClientHello the size of Chrome's with an X25519MLKEM768 key share (1,216 bytes of it): about 1.9 KB. */
const pqHello = (name: string): Buffer => clientHelloMessage({ extensions: [extension(51, Buffer.concat([Buffer.of(0x04, 0xc6, 0x11, 0xec, 0x04, 0xc0), Buffer.alloc(1216, 0x42)])), padding(500), serverNameExtension({ name })] });
/** `ch` cut at `cuts`, one Initial datagram per piece (packet numbers in order). */
const datagramsOf = (ch: Buffer, cuts: readonly number[], dcid: Uint8Array = DCID): Buffer[] => {
  const bounds = [0, ...cuts, ch.length];
  return bounds.slice(1).map((end, i) => protectClientInitial(dcid, cryptoFrame(bounds[i]!, ch.subarray(bounds[i], end)), { packetNumber: i }));
};

describe('QUIC ClientHello over several Initial datagrams and packets', () => {
  it('a post-quantum-sized ClientHello in two datagrams: more after the first, the name after the second, in either order', () => {
    const ch = pqHello('pq.example');
    assert.ok(ch.length > 1800, `${ch.length} bytes: more than one datagram`);
    const [first, second] = datagramsOf(ch, [1100]);
    assert.deepEqual(sniffQuicServerName(first!), NONE, 'one datagram alone has no name');
    const inOrder = new QuicClientHelloAssembly();
    assert.deepEqual([inOrder.offer(first!), inOrder.offer(second!)], [{ kind: 'more' }, quicName('pq.example')]);
    const reordered = new QuicClientHelloAssembly();
    assert.deepEqual([reordered.offer(second!), reordered.offer(first!)], [{ kind: 'more' }, quicName('pq.example')], 'the second datagram first: its CRYPTO waits for offset 0');
  });

  it('gives up after maxDatagrams, past maxCryptoBytes, and at once on a first datagram that is no Initial', () => {
    const ch = hello('many.example', 3000);
    const pieces = datagramsOf(ch, [600, 1200, 1800, 2400]);
    const four = new QuicClientHelloAssembly();
    assert.deepEqual(pieces.slice(0, 4).map((d) => four.offer(d).kind), ['more', 'more', 'more', 'none'], 'the default bound is 4 datagrams');
    const five = new QuicClientHelloAssembly({ maxDatagrams: 5 });
    assert.deepEqual(pieces.map((d) => five.offer(d).kind), ['more', 'more', 'more', 'more', 'name']);
    const repeated = new QuicClientHelloAssembly({ maxDatagrams: 100, maxCryptoBytes: 2000 });
    assert.deepEqual([1, 2, 3, 4].map(() => repeated.offer(pieces[0]!).kind), ['more', 'more', 'more', 'none'], 'the same 600 bytes again and again: past 2,000 bytes, none');
    const plain = new QuicClientHelloAssembly();
    assert.deepEqual(plain.offer(Buffer.from('not quic at all')), NONE);
  });

  it('a later datagram that is no Initial of this flow adds nothing but counts', () => {
    const ch = pqHello('dcid.example');
    const [first, second] = datagramsOf(ch, [1000]);
    const [, otherDcid] = datagramsOf(ch, [1000], Buffer.from('ffeeddccbbaa9988', 'hex'));
    const a = new QuicClientHelloAssembly({ maxDatagrams: 4 });
    assert.deepEqual([a.offer(first!), a.offer(otherDcid!), a.offer(Buffer.from('0-RTT or garbage')), a.offer(second!)].map((r) => r.kind), ['more', 'more', 'more', 'name']);
    const b = new QuicClientHelloAssembly({ maxDatagrams: 3 });
    assert.deepEqual([b.offer(first!), b.offer(otherDcid!), b.offer(Buffer.from('garbage'))].map((r) => r.kind), ['more', 'more', 'none']);
  });

  it('coalesced packets in one datagram: Initials after the first add their CRYPTO, other long headers are skipped, padding and other DCIDs end it', () => {
    const ch = hello('coalesced.example', 600);
    const [one, two] = [protectClientInitial(DCID, cryptoFrame(0, ch.subarray(0, 300)), { size: 0, packetNumber: 0 }), protectClientInitial(DCID, cryptoFrame(300, ch.subarray(300)), { size: 0, packetNumber: 1 })];
    assert.deepEqual(sniffQuicServerName(one), NONE);
    assert.deepEqual(sniffQuicServerName(Buffer.concat([one, two])), quicName('coalesced.example'));
    assert.deepEqual(sniffQuicServerName(Buffer.concat([two, one, Buffer.alloc(200)])), quicName('coalesced.example'), 'in reverse order, then zero padding');
    assert.deepEqual(sniffQuicServerName(Buffer.concat([one, handshakePacket(DCID), two])), quicName('coalesced.example'), 'a Handshake packet between them is skipped');
    assert.deepEqual(sniffQuicServerName(Buffer.concat([one, Buffer.alloc(30), two])), NONE, 'bytes that are no packet end the datagram');
    const foreign = protectClientInitial(Buffer.from('0102030405060708', 'hex'), cryptoFrame(300, ch.subarray(300)), { size: 0 });
    assert.deepEqual(sniffQuicServerName(Buffer.concat([one, foreign])), NONE, 'a packet of another connection ID is not read');
    const damaged = Buffer.from(two);
    damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 1;
    assert.deepEqual(sniffQuicServerName(Buffer.concat([one, damaged])), NONE, 'a coalesced Initial that does not authenticate adds nothing');
    assert.equal(decryptClientInitial(Buffer.concat([one, damaged]))?.crypto.length, 1, 'the first packet still opens');
  });

  it('property: a ClientHello cut into 1-4 datagrams, frames scattered within each, coalesced or not, offered in any order, gives the name', () => {
    const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,15}$/);
    fc.assert(
      fc.property(label, fc.nat(2500), fc.array(fc.nat(1 << 16), { minLength: 0, maxLength: 3 }), fc.array(fc.nat(1 << 16), { maxLength: 6 }), fc.integer(), fc.boolean(), (name, pad, datagramCuts, frameCuts, shuffle, coalesce) => {
        const ch = hello(`${name}.example`, pad);
        const cuts = [...new Set(datagramCuts.map((c) => 1 + (c % (ch.length - 1))))].sort((a, b) => a - b);
        const bounds = [0, ...cuts, ch.length];
        const packets = bounds.slice(1).map((end, i) => {
          const start = bounds[i]!;
          const inner = [...new Set(frameCuts.map((c) => start + (c % (end - start))))].filter((c) => c > start).sort((a, b) => a - b);
          const edges = [start, ...inner, end];
          const frames = edges.slice(1).map((e, j) => cryptoFrame(edges[j]!, ch.subarray(edges[j], e)));
          const order = frames.map((f, j) => ({ f, k: Math.imul(j + 7, shuffle | 1) >>> 0 })).sort((x, y) => x.k - y.k);
          return protectClientInitial(DCID, Buffer.concat(order.map((o) => o.f)), { packetNumber: i, size: coalesce ? 0 : 1200 });
        });
        const order = packets.map((p, i) => ({ p, k: Math.imul(i + 3, shuffle | 1) >>> 0 })).sort((x, y) => x.k - y.k).map((o) => o.p);
        const datagrams = coalesce ? [Buffer.concat(order)] : order;
        const assembly = new QuicClientHelloAssembly();
        const results = datagrams.map((d) => assembly.offer(d));
        assert.deepEqual(results.pop(), quicName(`${name}.example`));
        assert.ok(results.every((r) => r.kind === 'more'), 'more until the last');
      }),
      { seed: 0x15f3, numRuns: 200 },
    );
  });
});

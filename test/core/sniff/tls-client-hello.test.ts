import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_TLS_SNIFF_BYTES, sniffClientHelloMessage, sniffTlsServerName } from '../../../src/core/sniff/tls-client-hello.js';
import { clientHelloMessage, extension, inRecords, padding, realClientHello, serverNameExtension } from '../../helpers/client-hello.js';
import { PROPERTY_RUNS, assertSniffResult } from '../../helpers/sniff.js';

const name = (n: string): unknown => ({ kind: 'name', name: n, protocol: 'tls' });
const MORE = { kind: 'more' };
const NONE = { kind: 'none' };
const ALPN = extension(16, Buffer.from('000c02683208687474702f312e31', 'hex'));
const withSni = (sni: string, before: readonly Buffer[] = [ALPN], after: readonly Buffer[] = [padding(40)]): Buffer =>
  clientHelloMessage({ extensions: [...before, serverNameExtension({ name: sni }), ...after] });

describe('TLS ClientHello SNI', () => {
  const real: Record<string, Buffer> = {};
  before(async () => {
    real.tls13 = await realClientHello({ servername: 'www.example.com', ALPNProtocols: ['h2', 'http/1.1'] });
    real.tls12 = await realClientHello({ servername: 'api.example.net', maxVersion: 'TLSv1.2' });
    real.noSni = await realClientHello({ host: '203.0.113.20' });
  });

  it('reads the name a real TLS 1.3 and TLS 1.2 client (Node/OpenSSL) sends, and none without SNI', () => {
    assert.deepEqual(sniffTlsServerName(real.tls13!), name('www.example.com'));
    assert.deepEqual(sniffTlsServerName(real.tls12!), name('api.example.net'));
    assert.deepEqual(sniffTlsServerName(real.noSni!), NONE);
  });

  it('says more for every prefix of a real ClientHello that ends before its name, and the name once it is in', () => {
    const hello = real.tls13!;
    const nameEnd = hello.indexOf('www.example.com') + 'www.example.com'.length;
    for (let length = 0; length <= hello.length; length++) {
      assert.deepEqual(sniffTlsServerName(hello.subarray(0, length)), length < nameEnd ? MORE : name('www.example.com'), `prefix of ${length}`);
    }
  });

  it('reassembles a ClientHello split over records of any size, with bytes of the next records after it', () => {
    const hello = withSni('split.example', [padding(600)]);
    for (const size of [1, 2, 7, 100, 512, 16384]) {
      assert.deepEqual(sniffTlsServerName(inRecords(hello, size, 0x0303)), name('split.example'), `records of ${size}`);
    }
    const afterIt = Buffer.concat([inRecords(hello), Buffer.from('1403030001011703030010', 'hex')]);
    assert.deepEqual(sniffTlsServerName(afterIt), name('split.example'));
  });

  const table: ReadonlyArray<readonly [string, Uint8Array, unknown]> = [
    ['nothing yet', Buffer.alloc(0), MORE],
    ['an HTTP request, told from its first byte', Buffer.from('G'), NONE],
    ['an SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'), NONE],
    ['an alert record', Buffer.from('150303000202', 'hex'), NONE],
    ['an SSLv2-compatible ClientHello', Buffer.from('80c40103010099', 'hex'), NONE],
    ['a record version of 2.x', Buffer.from('1602', 'hex'), NONE],
    ['a record version of 3.5', Buffer.from('160305', 'hex'), NONE],
    ['a zero-length record', Buffer.from('1603010000', 'hex'), NONE],
    ['a record longer than 2^14', Buffer.from('1603014001', 'hex'), NONE],
    ['a ServerHello instead', inRecords(Buffer.concat([Buffer.of(2), withSni('x.example').subarray(1)])), NONE],
    ['upper case and a trailing dot', inRecords(withSni('WWW.Example.COM.')), name('www.example.com')],
    ['SNI as the first extension', inRecords(withSni('first.example', [])), name('first.example')],
    ['SNI after 3,000 bytes of padding', inRecords(withSni('late.example', [padding(3000)])), name('late.example')],
    ['a name with CR LF (log injection)', inRecords(withSni('evil.example\r\nforged: 1')), NONE],
    ['a name with NUL', inRecords(withSni('evil.example\0.good.example')), NONE],
    ['an IP literal as SNI', inRecords(withSni('203.0.113.20')), NONE],
    ['a 64-character label', inRecords(withSni(`${'a'.repeat(64)}.example`)), NONE],
    ['an empty host_name', inRecords(withSni('')), NONE],
    ['a name type other than host_name, then a host_name', inRecords(clientHelloMessage({ extensions: [serverNameExtension({ type: 7, name: 'other' }, { name: 'second.example' })] })), name('second.example')],
    ['a name type other than host_name only', inRecords(clientHelloMessage({ extensions: [serverNameExtension({ type: 7, name: 'other.example' })] })), NONE],
    ['no extensions block', inRecords(clientHelloMessage({})), NONE],
    ['extensions without SNI', inRecords(clientHelloMessage({ extensions: [ALPN, padding(10)] })), NONE],
    ['a server_name list length that disagrees with its extension', inRecords(clientHelloMessage({ extensions: [extension(0, Buffer.from('000a000006616263646566', 'hex'))] })), NONE],
    ['a host_name longer than its list', inRecords(clientHelloMessage({ extensions: [extension(0, Buffer.from('000400ff0061', 'hex'))] })), NONE],
    ['a session id of 33 bytes', inRecords(clientHelloMessage({ sessionId: Buffer.alloc(33), extensions: [serverNameExtension({ name: 'a.example' })] })), NONE],
    ['an odd cipher suite length', inRecords(clientHelloMessage({ cipherSuites: Buffer.of(0x13, 0x01, 0x13), extensions: [serverNameExtension({ name: 'a.example' })] })), NONE],
    ['no compression method', inRecords(clientHelloMessage({ compression: Buffer.alloc(0), extensions: [serverNameExtension({ name: 'a.example' })] })), NONE],
  ];
  for (const [what, bytes, expected] of table) {
    it(`${what}: ${JSON.stringify(expected)}`, () => assert.deepEqual(sniffTlsServerName(bytes), expected));
  }

  it('refuses an extension that runs past the extensions block, and an extensions block that is not the rest of the message', () => {
    const good = withSni('a.example', [], []);
    const extensionsAt = good.length - serverNameExtension({ name: 'a.example' }).length - 2;
    const longer = Buffer.from(good);
    longer.writeUInt16BE(good.readUInt16BE(extensionsAt) + 1, extensionsAt);
    assert.deepEqual(sniffTlsServerName(inRecords(longer)), NONE);
    const shorter = Buffer.from(good);
    shorter.writeUInt16BE(good.readUInt16BE(extensionsAt) - 1, extensionsAt);
    assert.deepEqual(sniffTlsServerName(inRecords(shorter)), NONE);
    const overrun = Buffer.from(good);
    overrun.writeUInt16BE(0xff, extensionsAt + 4); // the SNI extension's own length
    assert.deepEqual(sniffTlsServerName(inRecords(overrun)), NONE);
  });

  it('ends a handshake cut by a non-handshake record, and a ClientHello whose name lies beyond the bound', () => {
    const hello = withSni('cut.example', [padding(200)]);
    const cut = Buffer.concat([inRecords(hello.subarray(0, 100)), Buffer.from('15030300020100', 'hex'), inRecords(hello.subarray(100))]);
    assert.deepEqual(sniffTlsServerName(cut), NONE);
    // 1-byte records cost 6 bytes of stream per byte of handshake: 3,000 bytes do not fit in 16 KiB + 5.
    const tiny = inRecords(withSni('far.example', [padding(3000)]), 1);
    assert.deepEqual(sniffTlsServerName(tiny.subarray(0, MAX_TLS_SNIFF_BYTES - 1)), MORE);
    assert.deepEqual(sniffTlsServerName(tiny.subarray(0, MAX_TLS_SNIFF_BYTES)), NONE);
    assert.deepEqual(sniffTlsServerName(tiny), NONE);
    const huge = Buffer.concat([Buffer.of(1, 0, 0x40, 0), Buffer.alloc(100)]);
    assert.deepEqual(sniffTlsServerName(inRecords(huge)), NONE, 'a ClientHello longer than one record can hold');
  });

  it('reads handshake-layer bytes directly (the QUIC CRYPTO stream) with the protocol it is told', () => {
    assert.deepEqual(sniffClientHelloMessage(withSni('q.example'), 'quic'), { kind: 'name', name: 'q.example', protocol: 'quic' });
    assert.deepEqual(sniffClientHelloMessage(withSni('q.example').subarray(0, 50), 'quic'), MORE);
  });

  it('property: random bytes, TLS-looking bytes and mutated real ClientHellos give a SniffResult, never a throw', () => {
    const hello = real.tls13!;
    const mutated = fc
      .array(fc.tuple(fc.nat(hello.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })
      .chain((edits) => fc.nat(hello.length).map((cut) => ({ edits, cut })))
      .map(({ edits, cut }) => {
        const copy = Buffer.from(hello);
        for (const [at, value] of edits) copy[at] = value;
        return copy.subarray(0, cut);
      });
    const tlsLooking = fc.uint8Array({ maxLength: 2000 }).map((rest) => Buffer.concat([Buffer.from('160301', 'hex'), Buffer.of(rest.length >> 8, rest.length & 0xff, 1), rest]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 20000 }), tlsLooking, mutated), (bytes) => assertSniffResult(sniffTlsServerName(bytes), 'tls')),
      { seed: 0x15a1, numRuns: PROPERTY_RUNS },
    );
  });

  it('property: any split of a valid ClientHello into records gives its name, and every prefix gives more or the name', () => {
    const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/);
    const arbitraryHello = fc.record({
      labels: fc.array(label, { minLength: 1, maxLength: 5 }),
      padBefore: fc.nat(1200),
      padAfter: fc.nat(300),
      recordSize: fc.integer({ min: 1, max: 2000 }),
      cut: fc.double({ min: 0, max: 1, noNaN: true }),
    });
    fc.assert(
      fc.property(arbitraryHello, ({ labels, padBefore, padAfter, recordSize, cut }) => {
        const sni = `${labels.join('.')}.example`;
        const hello = withSni(sni, [padding(padBefore)], [padding(padAfter)]);
        const stream = inRecords(hello, recordSize);
        assert.deepEqual(sniffTlsServerName(stream), name(sni));
        // The name's last byte, in stream offsets (each record adds a 5-byte header before it).
        const last = hello.indexOf(sni) + sni.length - 1;
        const needed = last + 5 * (Math.floor(last / recordSize) + 1) + 1;
        assert.deepEqual(sniffTlsServerName(stream.subarray(0, needed - 1)), MORE);
        assert.deepEqual(sniffTlsServerName(stream.subarray(0, needed)), name(sni));
        const prefix = sniffTlsServerName(stream.subarray(0, Math.floor(cut * stream.length)));
        assert.ok(prefix.kind === 'more' || (prefix.kind === 'name' && prefix.name === sni), JSON.stringify(prefix));
      }),
      { seed: 0x15a2, numRuns: 500 },
    );
  });
});

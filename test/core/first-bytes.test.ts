import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FirstBytes, type FirstBytesDecoder, type FirstBytesStep } from '../../src/core/first-bytes.js';
import { proxyHeaderDecoder } from '../../src/core/proxy-protocol/first-bytes.js';
import type { ProxyHeader } from '../../src/core/proxy-protocol/header.js';
import { encodeProxyHeaderV1 } from '../../src/core/proxy-protocol/v1.js';
import { encodeProxyHeaderV2 } from '../../src/core/proxy-protocol/v2.js';
import { PROPERTY_RUNS } from '../helpers/sniff.js';

const HEADER: ProxyHeader = { version: 2, command: 'proxy', transport: 'tcp', addresses: { source: { family: 4, address: '198.51.100.10', port: 40000 }, destination: { family: 4, address: '203.0.113.20', port: 80 } }, tlvs: [] };
const limits = { maxV2Bytes: 512 };

/** Offer `chunks` one by one until an answer that is not `more`; the bytes after the header, wherever they were. */
function run(chunks: readonly Buffer[]): { step: FirstBytesStep<ProxyHeader>; rest: Buffer | undefined; offered: number } {
  const first = new FirstBytes(proxyHeaderDecoder(limits));
  let step: FirstBytesStep<ProxyHeader> = { kind: 'more' };
  let offered = 0;
  for (const chunk of chunks) {
    offered++;
    step = first.offer(chunk);
    if (step.kind === 'done') {
      const here = step.rest.in === 'chunk' ? chunk.subarray(step.rest.offset) : step.rest.bytes;
      // Whatever came in later chunks follows (a caller would not have received them yet: tests only).
      return { step, rest: Buffer.concat([here, ...chunks.slice(offered)]), offered };
    }
    if (step.kind === 'fail') break;
  }
  return { step, rest: undefined, offered };
}

describe('FirstBytes: the bytes before a flow relays', () => {
  it('a header and data in one chunk: decided at once, the data found in the chunk (nothing copied)', () => {
    const chunk = Buffer.concat([encodeProxyHeaderV2(HEADER), Buffer.from('GET / HTTP/1.0\r\n\r\n')]);
    const first = new FirstBytes(proxyHeaderDecoder(limits));
    const step = first.offer(chunk);
    assert.equal(step.kind, 'done');
    assert.ok(step.kind === 'done');
    assert.deepEqual(step.rest, { in: 'chunk', offset: encodeProxyHeaderV2(HEADER).length });
    assert.deepEqual(step.value.addresses, HEADER.addresses);
  });

  it('split anywhere into any number of chunks: the same header, and every byte after it exactly once, in order', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(400), { maxLength: 6 }), (v1, payload, cuts) => {
        const header = v1 ? Buffer.from(encodeProxyHeaderV1(HEADER)) : Buffer.from(encodeProxyHeaderV2(HEADER));
        const whole = Buffer.concat([header, Buffer.from(payload)]);
        const points = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...points].map((from, i) => whole.subarray(from, [...points, whole.length][i])).filter((c) => c.length > 0);
        const { step, rest } = run(chunks);
        assert.equal(step.kind, 'done', JSON.stringify(step));
        assert.ok(step.kind === 'done');
        assert.deepEqual(step.value.addresses, HEADER.addresses);
        assert.deepEqual(rest, Buffer.from(payload));
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });

  it('the bytes held are a copy: the caller reuses its receive buffer between chunks', () => {
    const header = Buffer.from(encodeProxyHeaderV1(HEADER));
    const first = new FirstBytes(proxyHeaderDecoder(limits));
    const buffer = Buffer.alloc(64);
    header.copy(buffer, 0, 0, 10);
    assert.equal(first.offer(buffer.subarray(0, 10)).kind, 'more');
    buffer.fill(0x58);
    header.copy(buffer, 0, 10);
    const step = first.offer(buffer.subarray(0, header.length - 10 + 3));
    assert.ok(step.kind === 'done');
    assert.deepEqual(step.rest, { in: 'chunk', offset: header.length - 10 });
  });

  it('refusals carry the decoder reason; an early end says truncated or closed-before-header', () => {
    assert.deepEqual(new FirstBytes(proxyHeaderDecoder(limits)).offer(Buffer.from('GET / HTTP/1.1\r\n')), { kind: 'fail', reason: 'bad-signature' });
    const first = new FirstBytes(proxyHeaderDecoder(limits));
    assert.deepEqual(new FirstBytes(proxyHeaderDecoder(limits)).ended('eof'), { kind: 'fail', reason: 'closed-before-header' });
    assert.equal(first.offer(Buffer.from('PROXY TCP4 ')).kind, 'more');
    assert.equal(first.length, 11);
    assert.deepEqual(first.ended('eof'), { kind: 'fail', reason: 'truncated' });
    assert.deepEqual(first.ended('deadline'), { kind: 'fail', reason: 'header-timeout' });
  });

  it('bounded: a decoder still asking for more at maxBytes ends as too-long; a sniffer taking nothing gets every byte back from the held copy', () => {
    const patient: FirstBytesDecoder<string> = { maxBytes: 8, decode: (held) => (held.includes(0x0a) ? { kind: 'done', value: 'line', take: 0 } : { kind: 'more' }), ended: (_held, cause) => ({ kind: 'fail', reason: cause }) };
    const a = new FirstBytes(patient);
    assert.equal(a.offer(Buffer.from('abcd')).kind, 'more');
    assert.deepEqual(a.offer(Buffer.from('efgh')), { kind: 'fail', reason: 'too-long' });
    const b = new FirstBytes(patient);
    assert.equal(b.offer(Buffer.from('ab')).kind, 'more');
    const step = b.offer(Buffer.from('c\nd'));
    assert.ok(step.kind === 'done');
    assert.deepEqual(step.rest, { in: 'held', bytes: Buffer.from('abc\nd') });
  });

  it('a decoder taking more than it was offered is a programming error, said so', () => {
    const greedy: FirstBytesDecoder<number> = { maxBytes: 8, decode: () => ({ kind: 'done', value: 1, take: 5 }), ended: () => ({ kind: 'fail', reason: 'eof' }) };
    assert.throws(() => new FirstBytes(greedy).offer(Buffer.from('ab')), /took 5 of 2 bytes/);
  });
});

describe('sniffing as a first-bytes decoder', () => {
  it('a name decides at once and takes nothing; an end or the deadline decide without a name, every byte held going on', async () => {
    const { SNIFF_DECODER } = await import('../../src/core/sniff/first-bytes.js');
    const host = new FirstBytes(SNIFF_DECODER);
    assert.equal(host.offer(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'more');
    const named = host.offer(Buffer.from('Host: example.com\r\n\r\n'));
    assert.ok(named.kind === 'done');
    assert.deepEqual(named.value, { outcome: 'http', name: 'example.com' });
    assert.deepEqual(named.rest, { in: 'held', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n') });
    const cut = new FirstBytes(SNIFF_DECODER);
    assert.equal(cut.offer(Buffer.from('GET / HT')).kind, 'more');
    assert.deepEqual(cut.ended('deadline'), { kind: 'done', value: { outcome: 'timeout', name: undefined }, rest: { in: 'held', bytes: Buffer.from('GET / HT') } });
    assert.deepEqual(new FirstBytes(SNIFF_DECODER).ended('eof'), { kind: 'done', value: { outcome: 'closed', name: undefined }, rest: { in: 'held', bytes: Buffer.alloc(0) } });
    const other = new FirstBytes(SNIFF_DECODER).offer(Buffer.from('SSH-2.0-x\r\n'));
    assert.ok(other.kind === 'done');
    assert.deepEqual(other.value, { outcome: 'none', name: undefined });
    assert.deepEqual(other.rest, { in: 'chunk', offset: 0 });
  });
});

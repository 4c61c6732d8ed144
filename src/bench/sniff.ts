/**
 * Micro-benchmarks of the per-flow parsers (pure CPU, no lab): what naming a flow costs before it
 * is routed. Figures are nanoseconds per call, the median of `rounds` timed loops after a warm-up;
 * they belong in `npm run bench` next to each other (ratios), never in a test's assertions.
 *
 *   node dist/src/bench/sniff.js [iterations]
 */
import { fileURLToPath } from 'node:url';
import { decodeProxyHeader } from '../core/proxy-protocol/decode.js';
import { encodeProxyHeaderV2 } from '../core/proxy-protocol/v2.js';
import { DomainSet } from '../core/sniff/domain-set.js';
import { sniffHttpHost } from '../core/sniff/http-host.js';
import { sniffStream } from '../core/sniff/stream.js';
import { sniffTlsServerName } from '../core/sniff/tls-client-hello.js';
import { decodeSocks5UdpDatagram, encodeSocks5UdpDatagram } from '../core/upstream/socks5-udp.js';
import { formatColumns, summarize } from './stats.js';

export interface SniffBenchRow {
  readonly name: string;
  readonly nsPerCall: number;
}

/** A 512-byte TLS record holding a ClientHello whose SNI comes after 400 bytes of other extensions. */
export function clientHello512(name: string): Buffer {
  const u16 = (n: number): Buffer => Buffer.of(n >> 8, n & 0xff);
  const host = Buffer.from(name, 'latin1');
  const sni = Buffer.concat([u16(0), u16(host.length + 5), u16(host.length + 3), Buffer.of(0), u16(host.length), host]);
  const fixed = 2 + 32 + 1 + 32 + 2 + 4 + 2 + 2; // version, random, session id, suites, compression, extensions length
  const padLength = 512 - 5 - 4 - fixed - sni.length - 4;
  const extensions = Buffer.concat([u16(21), u16(padLength), Buffer.alloc(padLength), sni]);
  const body = Buffer.concat([Buffer.of(3, 3), Buffer.alloc(32, 1), Buffer.of(32), Buffer.alloc(32, 2), u16(4), Buffer.of(0x13, 1, 0x13, 2), Buffer.of(1, 0), u16(extensions.length), extensions]);
  const handshake = Buffer.concat([Buffer.of(1, 0), u16(body.length), body]);
  return Buffer.concat([Buffer.of(22, 3, 1), u16(handshake.length), handshake]);
}

function timeNs(iterations: number, rounds: number, call: (i: number) => unknown): number {
  let sink: unknown;
  for (let i = 0; i < Math.min(iterations, 10_000); i++) sink = call(i);
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink = call(i);
    samples.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  if (sink === Symbol.for('never')) samples.push(0); // keeps the calls observable to the optimiser
  return summarize(samples).median;
}

export function benchSniff(iterations = 200_000, rounds = 5): SniffBenchRow[] {
  const hello = clientHello512('www.example.com');
  const http = Buffer.from('GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n');
  const suffixes = Array.from({ length: 1000 }, (_, i) => `.domain${i}.example`);
  const domains = DomainSet.from(suffixes);
  const names = ['a.b.www.domain999.example', 'cdn.other.example', 'domain5.example', 'x.domain500.example'];
  const proxyV2 = encodeProxyHeaderV2({ command: 'proxy', transport: 'tcp', addresses: { source: { family: 4, address: '198.51.100.10', port: 40000 }, destination: { family: 4, address: '203.0.113.20', port: 80 } } });
  const socksUdp = encodeSocks5UdpDatagram({ family: 4, address: '203.0.113.20', port: 53 }, Buffer.alloc(64));
  return [
    { name: 'TLS ClientHello 512 B -> SNI', nsPerCall: timeNs(iterations, rounds, () => sniffTlsServerName(hello)) },
    { name: 'HTTP/1 request head -> Host', nsPerCall: timeNs(iterations, rounds, () => sniffHttpHost(http)) },
    { name: 'sniffStream (TLS) 512 B', nsPerCall: timeNs(iterations, rounds, () => sniffStream(hello)) },
    { name: 'DomainSet.has, 1,000 suffixes', nsPerCall: timeNs(iterations, rounds, (i) => domains.has(names[i & 3]!)) },
    { name: 'PROXY v2 header decode (IPv4)', nsPerCall: timeNs(iterations, rounds, () => decodeProxyHeader(proxyV2)) },
    { name: 'SOCKS5 UDP header decode (IPv4)', nsPerCall: timeNs(iterations, rounds, () => decodeSocks5UdpDatagram(socksUdp)) },
  ];
}

export function formatSniffBench(rows: readonly SniffBenchRow[]): string {
  return formatColumns([['parser', 'ns/call'], ...rows.map((r) => [r.name, r.nsPerCall.toFixed(0)])]);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${formatSniffBench(benchSniff(Number(process.argv[2] ?? 200_000)))}\n`);
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { benchSniff, clientHello512, formatSniffBench } from '../../src/bench/sniff.js';
import { sniffTlsServerName } from '../../src/core/sniff/tls-client-hello.js';

describe('sniff micro-benchmark', () => {
  it('benchmarks a real 512-byte ClientHello (the sniffer finds its name)', () => {
    const hello = clientHello512('www.example.com');
    assert.equal(hello.length, 512);
    assert.deepEqual(sniffTlsServerName(hello), { kind: 'name', name: 'www.example.com', protocol: 'tls' });
  });

  it('gives a figure per parser and a table naming them (no timing asserted)', () => {
    const rows = benchSniff(50, 1);
    assert.equal(rows.length, 6);
    for (const row of rows) assert.ok(Number.isFinite(row.nsPerCall) && row.nsPerCall > 0, row.name);
    assert.match(formatSniffBench(rows), /DomainSet\.has, 1,000 suffixes\s+\d+/);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeDnsResponse, encodeDnsQuery } from '../../src/lab/dns.js';

describe('lab DNS messages', () => {
  it('encodes a recursive query with one question', () => {
    const q = encodeDnsQuery(0x1234, 'example.test', 'A');
    assert.equal(q.toString('hex'), '123401000001000000000000076578616d706c650474657374000001' + '0001');
  });

  it('decodes A and AAAA answers behind a compressed name', () => {
    const q = encodeDnsQuery(7, 'example.test', 'A');
    const header = Buffer.from(q.subarray(0, 12));
    header.writeUInt16BE(0x8180, 2);
    header.writeUInt16BE(2, 6);
    const a = Buffer.from('c00c000100010000003c0004c0000235', 'hex');
    const aaaa = Buffer.concat([Buffer.from('c00c001c00010000003c0010', 'hex'), Buffer.from('20010db8005300000000000000000053', 'hex')]);
    const response = Buffer.concat([header, q.subarray(12), a, aaaa]);
    assert.deepEqual(decodeDnsResponse(response), { id: 7, rcode: 0, addresses: ['192.0.2.53', '2001:db8:53::53'] });
  });
});

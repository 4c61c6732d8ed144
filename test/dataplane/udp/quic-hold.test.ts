import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QuicHold } from '../../../src/dataplane/udp/quic-hold.js';
import { clientHelloMessage, extension, padding, serverNameExtension } from '../../helpers/client-hello.js';
import { cryptoFrame, protectClientInitial } from '../../helpers/rfc9001.js';

const client = { family: 4, address: '198.51.100.10', port: 40000 } as const;
const server = { family: 4, address: '203.0.113.20', port: 443 } as const;
const DCID = Buffer.from('0102030405060708', 'hex');
/** A ClientHello of about 1.9 KB (a post-quantum key share) in two Initial datagrams. */
const [FIRST, SECOND] = ((): Buffer[] => {
  const hello = clientHelloMessage({ extensions: [extension(51, Buffer.alloc(1222, 1)), padding(400), serverNameExtension({ name: 'pq.example' })] });
  return [protectClientInitial(DCID, cryptoFrame(0, hello.subarray(0, 1100)), { packetNumber: 0 }), protectClientInitial(DCID, cryptoFrame(1100, hello.subarray(1100)), { packetNumber: 1 })];
})() as [Buffer, Buffer];

describe('QUIC hold: flows waiting for the rest of their ClientHello', () => {
  it('holds the first datagram (a copy), then routes with the name and what was held, in order', () => {
    const hold = new QuicHold({ timeoutMs: 300 });
    const slot = Buffer.from(FIRST);
    assert.deepEqual(hold.first('f', client, server, slot, 10, 1000), { kind: 'held' });
    slot.fill(0); // the receive slot is reused
    assert.equal(hold.size, 1);
    const step = hold.next('f', SECOND);
    assert.deepEqual(step, { kind: 'route', name: 'pq.example', held: [FIRST], dscp: 10 });
    assert.equal(hold.has('f'), false);
  });

  it('routes at once what is no QUIC, or a whole ClientHello; without a name what times out or passes the bounds', () => {
    const hold = new QuicHold({ timeoutMs: 300, maxFlows: 2, maxHeldBytes: 2000 });
    assert.deepEqual(hold.first('dns', client, server, Buffer.from('a DNS query'), undefined, 0), { kind: 'route', name: undefined, held: [], dscp: undefined });
    assert.deepEqual(hold.first('a', client, server, FIRST, undefined, 1000), { kind: 'held' });
    assert.deepEqual(hold.first('b', client, server, FIRST, undefined, 1100), { kind: 'held' });
    assert.deepEqual(hold.first('c', client, server, FIRST, undefined, 1100), { kind: 'route', name: undefined, held: [], dscp: undefined }, 'maxFlows held already: routed by address');
    assert.deepEqual(hold.expired(1299), []);
    assert.deepEqual(hold.expired(1300), [{ client, destination: server, held: [FIRST], dscp: undefined }], 'a first, at its deadline');
    // b: another incomplete datagram would pass maxHeldBytes: routed now, without a name.
    assert.deepEqual(hold.next('b', FIRST), { kind: 'route', name: undefined, held: [FIRST], dscp: undefined });
    assert.equal(hold.size, 0);
    assert.throws(() => hold.next('b', SECOND), /not held/);
  });

  it('a reload\'s sniff timeout applies to flows held from then on; clear drops them all', () => {
    const hold = new QuicHold({ timeoutMs: 300 });
    hold.first('old', client, server, FIRST, undefined, 0);
    hold.setTimeout(1000);
    hold.first('new', client, server, FIRST, undefined, 0);
    assert.equal(hold.nextDeadline(), 300);
    hold.setTimeout(100);
    hold.first('later', client, server, FIRST, undefined, 50);
    assert.equal(hold.nextDeadline(), 150, 'the earliest deadline, not the first flow\'s: a shorter timeout came later');
    hold.setTimeout(1000);
    assert.deepEqual(hold.expired(500).length, 2);
    assert.equal(hold.has('new'), true);
    hold.clear();
    assert.equal(hold.size, 0);
    assert.equal(hold.nextDeadline(), undefined, 'nothing held: nothing timed');
  });
});

// Hostile upstream proxies: random replies in random pieces, offered to the SOCKS5 and HTTP
// CONNECT handshakes. Whatever arrives: no throw, every claim within what was offered and at least
// one byte, an end within bounded input, and "done" only for a reply the handshake understands.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { HandshakeStep, UpstreamHandshake } from '../../../src/core/upstream/handshake.js';
import { HttpConnectHandshake, MAX_RESPONSE_HEAD } from '../../../src/core/upstream/http-connect.js';
import { Socks5Handshake } from '../../../src/core/upstream/socks5.js';
import { FUZZ } from '../../helpers/hostile.js';

const V4 = { family: 4, address: '203.0.113.20', port: 80 } as const;

/** Offer `stream` in pieces as a socket would (what was not taken is offered again with more). */
function drive(h: UpstreamHandshake, stream: Uint8Array, cuts: readonly number[]): { steps: HandshakeStep[]; claimed: number } {
  const steps: HandshakeStep[] = [];
  let claimed = 0;
  let available = 0;
  for (const cut of [...cuts, stream.length]) {
    available = Math.max(available, Math.min(cut, stream.length));
    while (claimed < available) {
      const peeked = stream.subarray(claimed, available);
      const step = h.offer(peeked);
      steps.push(step);
      assert.ok(step.take >= 1 && step.take <= peeked.length, `took ${step.take} of ${peeked.length}`);
      claimed += step.take;
      if (step.kind === 'done' || step.kind === 'failed') return { steps, claimed };
      assert.ok(steps.length <= stream.length, 'one claim per byte at most');
    }
  }
  return { steps, claimed };
}

const cuts = fc.array(fc.nat(40_000), { maxLength: 6 }).map((c) => [...c].sort((a, b) => a - b));

describe('hostile upstream proxy replies', () => {
  it('SOCKS5: any bytes, any pieces; done only after a success with a known address type', () => {
    const reply = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // Mostly well-formed: method choice, then a connect reply with any REP and ATYP.
      fc.tuple(fc.nat(255), fc.nat(9), fc.constantFrom(1, 3, 4, 0, 2, 9, 255), fc.uint8Array({ maxLength: 270 })).map(([len, rep, atyp, rest]) => Uint8Array.from([5, 0, 5, rep, 0, atyp, len, ...rest])),
    );
    fc.assert(
      fc.property(reply, cuts, (stream, pieces) => {
        const { steps } = drive(new Socks5Handshake(V4), stream, pieces);
        const last = steps[steps.length - 1];
        if (last?.kind === 'done') {
          assert.equal(stream[2], 5);
          assert.equal(stream[3], 0, 'done only on success');
          assert.ok([1, 3, 4].includes(stream[5] ?? -1), `done on address type ${stream[5]}`);
        }
      }),
      FUZZ,
    );
  });

  it('HTTP CONNECT: any bytes, any pieces; done only on a 2xx head within the bound', () => {
    const head = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.tuple(fc.constantFrom('HTTP/1.1 200 OK', 'HTTP/1.0 204 x', 'HTTP/1.1 407 auth', 'HTTP/2 200', 'http/1.1 200 OK'), fc.nat(20_000), fc.constantFrom('\r\n\r\n', '\n\n', '\r\n')).map(([line, pad, end]) => Buffer.from(`${line}\r\nX: ${'p'.repeat(pad)}${end}tail`)),
    );
    fc.assert(
      fc.property(head, cuts, (stream, pieces) => {
        const { steps, claimed } = drive(new HttpConnectHandshake(V4), stream, pieces);
        const last = steps[steps.length - 1];
        if (last?.kind === 'done') {
          assert.ok(claimed <= MAX_RESPONSE_HEAD, `a head of ${claimed} bytes accepted`);
          assert.match(Buffer.from(stream.subarray(0, claimed)).toString('latin1'), /^HTTP\/1\.[01] 2\d\d[ \r][^]*\r\n\r\n$/);
        }
        if (last?.kind === 'more') assert.ok(claimed <= MAX_RESPONSE_HEAD, 'still waiting after the bound');
      }),
      FUZZ,
    );
  });
});

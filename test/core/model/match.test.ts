import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateMatch, type MatchContext } from '../../../src/core/model/match.js';
import { parseExpression } from '../../../src/core/model/nft-json.js';
import type { Match, NamedSet } from '../../../src/core/model/ruleset.js';
import { parseValue } from '../../../src/core/model/nft-json.js';
import { packet, sock } from '../../helpers/model.js';

const sets: NamedSet[] = [{ name: 'bypass4', type: 'ipv4_addr', elements: [parseValue({ prefix: { addr: '10.0.0.0', len: 8 } })!, parseValue('192.0.2.5')!] }];
const ctx = (over: Partial<MatchContext> = {}): MatchContext => ({ sets, socketFor: () => undefined, fibAddressType: () => 'unicast', ...over });

const m = (json: unknown): Match => {
  const e = parseExpression(json);
  assert.equal(e.kind, 'match');
  return e;
};
const L = {
  mark: { meta: { key: 'mark' } },
  l4: { meta: { key: 'l4proto' } },
  iif: { meta: { key: 'iifname' } },
  daddr: { payload: { protocol: 'ip', field: 'daddr' } },
  saddr6: { payload: { protocol: 'ip6', field: 'saddr' } },
  dport: { payload: { protocol: 'th', field: 'dport' } },
  udpDport: { payload: { protocol: 'udp', field: 'dport' } },
  flags: { payload: { protocol: 'tcp', field: 'flags' } },
};

const SYN = 'tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 syn mark 0x1ff dscp 10';
const ACK = 'tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 ack';
const V6 = 'udp [2001:db8:1::10]:5353 -> [2001:db8:2::20]:53 iif eth1';

const table: [string, unknown, string, boolean, Partial<MatchContext>?][] = [
  ['meta mark exact', { op: '==', left: L.mark, right: 0x1ff }, SYN, true],
  ['meta mark & mask', { op: '==', left: { '&': [L.mark, 0xff00] }, right: 0x100 }, SYN, true],
  ['meta mark & mask, other value', { op: '==', left: { '&': [L.mark, 0xff] }, right: 1 }, SYN, false],
  ['meta l4proto set', { op: '==', left: L.l4, right: { set: ['tcp', 'udp'] } }, SYN, true],
  ['meta l4proto !=', { op: '!=', left: L.l4, right: 'tcp' }, SYN, false],
  ['meta nfproto', { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv6' }, V6, true],
  ['iifname', { op: '==', left: L.iif, right: 'eth0' }, SYN, true],
  ['iifname wildcard', { op: '==', left: L.iif, right: 'eth*' }, V6, true],
  ['iifname negated set', { op: '!=', left: L.iif, right: { set: ['lo', 'eth1'] } }, SYN, true],
  ['ip daddr prefix', { op: '==', left: L.daddr, right: { prefix: { addr: '203.0.113.0', len: 24 } } }, SYN, true],
  ['ip daddr != prefix', { op: '!=', left: L.daddr, right: { prefix: { addr: '203.0.113.0', len: 24 } } }, SYN, false],
  ['ip daddr named set', { op: '==', left: L.daddr, right: '@bypass4' }, SYN, false],
  ['ip daddr on IPv6 never matches, even negated', { op: '!=', left: L.daddr, right: '10.0.0.1' }, V6, false],
  ['ip6 saddr anonymous set', { op: '==', left: L.saddr6, right: { set: [{ prefix: { addr: '2001:db8:1::', len: 64 } }] } }, V6, true],
  ['th dport range', { op: '==', left: L.dport, right: { range: [50, 90] } }, SYN, true],
  ['th dport set with range', { op: '==', left: L.dport, right: { set: [443, { range: [1000, 2000] }] } }, SYN, false],
  ['udp dport on TCP never matches', { op: '!=', left: L.udpDport, right: 22 }, SYN, false],
  ['tcp flags syn (in)', { op: 'in', left: L.flags, right: 'syn' }, SYN, true],
  ['tcp flags & (syn|ack) != syn on SYN', { op: '!=', left: { '&': [L.flags, ['syn', 'ack']] }, right: 'syn' }, SYN, false],
  ['tcp flags & (syn|ack) != syn on ACK', { op: '!=', left: { '&': [L.flags, ['syn', 'ack']] }, right: 'syn' }, ACK, true],
  ['tcp flags == syn', { op: '==', left: L.flags, right: 'syn' }, ACK, false],
  ['ct state established,related on a SYN', { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] }, SYN, false],
  ['ct state new on a SYN', { op: 'in', left: { ct: { key: 'state' } }, right: 'new' }, SYN, true],
  ['ip dscp af11', { op: '==', left: { payload: { protocol: 'ip', field: 'dscp' } }, right: 'af11' }, SYN, true],
  ['ip ttl', { op: '==', left: { payload: { protocol: 'ip', field: 'ttl' } }, right: 64 }, SYN, true],
  ['meta mark > 0x100', { op: '>', left: L.mark, right: 0x100 }, SYN, true],
  ['fib daddr type local', { op: '==', left: { fib: { result: 'type', flags: ['daddr'] } }, right: 'local' }, SYN, true, { fibAddressType: () => 'local' }],
  ['socket transparent with no socket breaks', { op: '==', left: { socket: { key: 'transparent' } }, right: 0 }, SYN, false],
  ['socket transparent 1', { op: '==', left: { socket: { key: 'transparent' } }, right: 1 }, SYN, true, { socketFor: () => sock('tcp', 'listen', '0.0.0.0:80', { transparent: true }) }],
  ['socket wildcard 1', { op: '==', left: { socket: { key: 'wildcard' } }, right: 1 }, SYN, true, { socketFor: () => sock('tcp', 'listen', '0.0.0.0:80') }],
  ['socket wildcard 0 on a bound socket', { op: '==', left: { socket: { key: 'wildcard' } }, right: 0 }, SYN, true, { socketFor: () => sock('tcp', 'listen', '203.0.113.20:80') }],
];

describe('evaluateMatch', () => {
  for (const [name, json, text, expected, over] of table) {
    it(`${name}: ${expected ? 'matches' : 'does not match'}`, () => {
      const r = evaluateMatch(m({ match: json }), packet(text), ctx(over));
      assert.equal(r.matched, expected, r.reason);
      assert.ok(r.reason.length > 0);
    });
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { markArithmetic, parseExpression, parseNftJson } from '../../../src/core/model/nft-json.js';
import { renderRule } from '../../../src/core/model/render.js';
import { isTproxyError } from '../../../src/core/errors.js';

// Real `nft -j list ruleset` output of nft 1.0.6 (trimmed).
const LIVE = {
  nftables: [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    { table: { family: 'inet', name: 't', handle: 1 } },
    { set: { family: 'inet', name: 'byp4', table: 't', type: 'ipv4_addr', handle: 4, flags: ['interval'], elem: [{ prefix: { addr: '10.0.0.0', len: 8 } }, '192.0.2.5'] } },
    { chain: { family: 'inet', table: 't', name: 'pre', handle: 1, type: 'filter', hook: 'prerouting', prio: -150, policy: 'accept' } },
    { chain: { family: 'inet', table: 't', name: 'sub', handle: 2 } },
    { rule: { family: 'inet', table: 't', chain: 'pre', handle: 6, expr: [{ match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: '@byp4' } }, { return: null }] } },
    {
      rule: {
        family: 'inet', table: 't', chain: 'pre', handle: 12,
        expr: [
          { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: { set: ['tcp', 'udp'] } } },
          { match: { op: '==', left: { payload: { protocol: 'th', field: 'dport' } }, right: { set: [80, 443, { range: [1000, 2000] }] } } },
          { tproxy: { port: 8000 } },
          { mangle: { key: { meta: { key: 'mark' } }, value: { '|': [{ '&': [{ meta: { key: 'mark' } }, 4294967041] }, 1] } } },
          { counter: { packets: 3, bytes: 180 } },
          { accept: null },
        ],
      },
    },
    { rule: { family: 'inet', table: 't', chain: 'pre', handle: 13, expr: [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'sport' } }, right: 53 } }, { tproxy: { family: 'ip', addr: '127.0.0.1', port: 53 } }, { accept: null }] } },
    { rule: { family: 'inet', table: 't', chain: 'pre', handle: 18, expr: [{ mangle: { key: { payload: { protocol: 'ip', field: 'dscp' } }, value: 'cs1' } }, { mangle: { key: { payload: { protocol: 'ip', field: 'ttl' } }, value: 5 } }] } },
    { rule: { family: 'inet', table: 't', chain: 'pre', handle: 17, expr: [{ match: { op: '==', left: { socket: { key: 'wildcard' } }, right: 0 } }, { log: { prefix: 'x' } }, { reject: { type: 'icmpx', expr: 'admin-prohibited' } }] } },
    { rule: { family: 'inet', table: 't', chain: 'pre', handle: 26, expr: [{ goto: { target: 'sub' } }] } },
    { rule: { family: 'inet', table: 't', chain: 'sub', handle: 28, expr: [{ xt: { type: 'target', name: 'TPROXY' } }, { drop: null }] } },
  ],
};

describe('nft JSON', () => {
  const rs = parseNftJson(LIVE);
  const table = rs.tables[0]!;
  const pre = table.chains.find((c) => c.name === 'pre')!;

  it('reads tables, base chains, regular chains and sets', () => {
    assert.equal(rs.tables.length, 1);
    assert.deepEqual(pre.base, { type: 'filter', hook: 'prerouting', priority: -150, policy: 'accept' });
    assert.equal(table.chains.find((c) => c.name === 'sub')!.base, undefined);
    assert.equal(table.sets[0]!.elements.length, 2);
    assert.deepEqual(pre.rules.map((r) => r.handle), [6, 12, 13, 18, 17, 26]);
  });

  it('renders the rules back readably', () => {
    assert.deepEqual(pre.rules.map(renderRule), [
      'ip daddr @byp4 return',
      'meta l4proto { tcp, udp } th dport { 80, 443, 1000-2000 } tproxy to :8000 meta mark set meta mark and 0xffffff00 xor 0x1 counter accept',
      'udp sport 53 tproxy ip to 127.0.0.1:53 accept',
      'ip dscp set cs1 ip ttl set 5',
      'socket wildcard 0 log prefix "x" reject with icmpx admin-prohibited',
      'goto sub',
    ]);
  });

  it('keeps what it cannot evaluate as unsupported', () => {
    const sub = table.chains.find((c) => c.name === 'sub')!;
    assert.equal(sub.rules[0]!.expressions[0]!.kind, 'unsupported');
  });

  it('rejects what is not nft JSON, saying what it expects', () => {
    assert.throws(() => parseNftJson('{"x":1}'), (e) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && /nft -j list ruleset/.test(e.message));
    assert.throws(() => parseNftJson('{'), (e) => isTproxyError(e, 'ERR_INVALID_ARGUMENT'));
    assert.deepEqual(parseNftJson(''), { tables: [] });
  });

  const markCases: [string, unknown, number, number][] = [
    ['set', 5, 0xff, 5],
    ['or', { '|': [{ meta: { key: 'mark' } }, 4] }, 0x11, 0x15],
    ['and then or', { '|': [{ '&': [{ meta: { key: 'mark' } }, 0xffffff00] }, 1] }, 0xab12, 0xab01],
    ['xor', { '^': [{ meta: { key: 'mark' } }, 3] }, 0x1, 0x2],
    ['and', { '&': [{ meta: { key: 'mark' } }, 0xf0] }, 0xff, 0xf0],
  ];
  for (const [name, json, before, after] of markCases) {
    it(`mark arithmetic: ${name}`, () => {
      const a = markArithmetic(json)!;
      assert.equal(((before & a.and) ^ a.xor) >>> 0, after);
    });
  }

  it('reads dscp by name and ttl as statements', () => {
    assert.deepEqual(parseExpression({ mangle: { key: { payload: { protocol: 'ip6', field: 'dscp' } }, value: 'af11' } }), { kind: 'tos', and: 3, xor: 40, text: 'ip6 dscp set af11', family: 6 });
    assert.deepEqual(parseExpression({ mangle: { key: { payload: { protocol: 'ip6', field: 'hoplimit' } }, value: 7 } }), { kind: 'ttl', op: 'set', value: 7, family: 6 });
  });
});

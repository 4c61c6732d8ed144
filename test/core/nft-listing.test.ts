import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isTproxyError } from '../../src/core/errors.js';
import { parseNftListing } from '../../src/core/nft-listing.js';
import { sourcePath } from '../helpers/paths.js';

// Real `nft -j list ruleset` output of nft 1.0.6 after `tproxy rules apply` (see core/rules/fixtures/).
const RICH = readFileSync(sourcePath('core/rules/fixtures/rich.nft.json'), 'utf8');

describe('nft listing', () => {
  it('reads tables, sets, chains and rules of a real listing, in nft order, expressions as listed', () => {
    const listing = parseNftListing(RICH);
    const doc = JSON.parse(RICH) as { nftables: Record<string, Record<string, unknown>>[] };
    const count = (kind: string): number => doc.nftables.filter((i) => kind in i).length;
    assert.deepEqual([listing.tables.length, listing.sets.length, listing.chains.length, listing.rules.length], [count('table'), count('set'), count('chain'), count('rule')]);
    assert.deepEqual(listing.tables.map((t) => `${t.family} ${t.name}`), ['inet tproxy_rules']);
    assert.deepEqual(listing.chains.map((c) => [c.name, c.type, c.hook, c.prio, c.policy]), [['prerouting', 'filter', 'prerouting', -150, 'accept'], ['output', 'route', 'output', -150, 'accept']]);
    assert.deepEqual(listing.sets.map((s) => [s.name, s.type, s.elem?.length ?? 0]), [['bypass_daddr4', 'ipv4_addr', 5], ['bypass_daddr6', 'ipv6_addr', 3], ['bypass_saddr4', 'ipv4_addr', 1], ['bypass_saddr6', 'ipv6_addr', 0]]);
    const rules = doc.nftables.filter((i) => 'rule' in i).map((i) => i.rule!);
    assert.deepEqual(listing.rules.map((r) => [r.chain, r.handle, r.comment]), rules.map((r) => [r.chain, r.handle, r.comment]));
    assert.deepEqual(listing.rules.map((r) => r.expr), rules.map((r) => r.expr));
  });

  it('takes JSON already parsed as well as text', () => {
    assert.deepEqual(parseNftListing(JSON.parse(RICH)), parseNftListing(RICH));
  });

  it('joins a concatenated set type as nft writes it, and takes one flag as a list', () => {
    const listing = parseNftListing({ nftables: [{ set: { family: 'inet', table: 't', name: 's', type: ['ipv4_addr', 'inet_service'], flags: 'interval', elem: [] } }] });
    assert.deepEqual(listing.sets, [{ family: 'inet', table: 't', name: 's', type: 'ipv4_addr . inet_service', flags: ['interval'], elem: [] }]);
  });

  const leftOut: [string, unknown][] = [
    ['a table without a name', { table: { family: 'inet' } }],
    ['a table of a family nft does not have', { table: { family: 'ipx', name: 't' } }],
    ['a chain without its table', { chain: { family: 'inet', name: 'c' } }],
    ['a set whose name is a number', { set: { family: 'ip', table: 't', name: 5, type: 'ipv4_addr' } }],
    ['a rule without its chain', { rule: { family: 'inet', table: 't', expr: [] } }],
    ['an item of two kinds at once', { table: { family: 'inet', name: 't' }, chain: { family: 'inet', table: 't', name: 'c' } }],
    ['an item that is not an object', ['table']],
    ['metainfo', { metainfo: { version: '1.0.6', json_schema_version: 1 } }],
  ];
  for (const [what, item] of leftOut) {
    it(`leaves out ${what}`, () => {
      assert.deepEqual(parseNftListing({ nftables: [item] }), { tables: [], chains: [], sets: [], rules: [] });
    });
  }

  it('leaves out fields of the wrong type, and keeps a rule without expressions as one with none', () => {
    const listing = parseNftListing({
      nftables: [
        { chain: { family: 'inet', table: 't', name: 'c', handle: '3', prio: 'mangle', hook: 'prerouting' } },
        { rule: { family: 'inet', table: 't', chain: 'c', comment: 7 } },
      ],
    });
    assert.deepEqual(listing.chains, [{ family: 'inet', table: 't', name: 'c', hook: 'prerouting' }]);
    assert.deepEqual(listing.rules, [{ family: 'inet', table: 't', chain: 'c', expr: [] }]);
  });

  it('keeps expressions it does not know as they are, for the reader to judge', () => {
    const expr = [{ xt: { type: 'target', name: 'TPROXY' } }, 'junk', null];
    assert.deepEqual(parseNftListing({ nftables: [{ rule: { family: 'ip', table: 't', chain: 'c', handle: 4, expr } }] }).rules[0]?.expr, expr);
  });

  it('reads empty text as an empty ruleset, and refuses what is not nft JSON saying what it expects', () => {
    assert.deepEqual(parseNftListing(' \n'), { tables: [], chains: [], sets: [], rules: [] });
    assert.throws(() => parseNftListing('{'), (e) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && /nft JSON could not be parsed/.test(e.message));
    for (const doc of ['{"x":1}', '[]', 'null', { nftables: {} }, 3]) {
      assert.throws(() => parseNftListing(doc), (e) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && /no "nftables" array: expected the output of `nft -j list ruleset`/.test(e.message));
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freeMarkBit, hex, markSetOperation, marksCollide, shortMark } from '../../../src/core/rules/marks.js';
import { decodeRecord, encodeRecord, recordedPolicyRoutes } from '../../../src/core/rules/record.js';

describe('packet marks', () => {
  it('formats marks as nft and ip print them', () => {
    assert.equal(hex(1), '0x00000001');
    assert.equal(hex(0xffffffff), '0xffffffff');
    assert.equal(shortMark({ value: 0xca6c, mask: 0xffffffff }), '0xca6c');
    assert.equal(shortMark({ value: 0x1, mask: 0x1 }), '0x1/0x1');
  });

  it('reduces a masked set to the and/or nft keeps', () => {
    assert.deepEqual(markSetOperation({ value: 1, mask: 1 }), { or: 1 });
    assert.deepEqual(markSetOperation({ value: 0x100, mask: 0xff00 }), { and: 0xffff01ff, or: 0x100 });
    assert.deepEqual(markSetOperation({ value: 0, mask: 0xff }), { and: 0xffffff00 });
    assert.deepEqual(markSetOperation({ value: 5, mask: 0xffffffff }), { assign: 5 });
  });

  it('says two marks collide when they share a bit and agree on the shared bits', () => {
    const ours = { value: 0x1, mask: 0x1 };
    assert.equal(marksCollide(ours, { value: 0x1, mask: 0x1 }), true);
    assert.equal(marksCollide(ours, { value: 0x3, mask: 0xffffffff }), true, 'a full-mask mark with our bit set');
    assert.equal(marksCollide(ours, { value: 0xca6c, mask: 0xffffffff }), false, 'WireGuard: bit 0 differs');
    assert.equal(marksCollide(ours, { value: 0x4000, mask: 0x4000 }), false, 'kube-proxy: disjoint bits');
    assert.equal(marksCollide(ours, { value: 0x40000, mask: 0xff0000 }), false, 'Tailscale: disjoint bits');
  });

  it('suggests the lowest bit nobody uses', () => {
    assert.equal(freeMarkBit([0x1, 0x2, 0xff00]), 0x4);
    assert.equal(freeMarkBit([0xffffffff]), undefined);
  });
});

describe('rules record', () => {
  it('round-trips through the comment and gives the policy routing it owns', () => {
    const record = { families: [4, 6] as const, fwmark: 0x10000, fwmarkMask: 0xff0000, routeTable: 4242, rulePriority: 100, owner: 77 };
    const text = encodeRecord({ ...record, families: [...record.families] });
    assert.equal(text, 'tproxy v1 families=4,6 fwmark=0x10000/0xff0000 table=4242 priority=100 owner=77');
    assert.deepEqual(decodeRecord(text), { ...record, families: [4, 6] });
    assert.deepEqual(recordedPolicyRoutes(decodeRecord(text)!).map((r) => [r.family, r.route.destination, r.rule.table]), [[4, '0.0.0.0/0', 4242], [6, '::/0', 4242]]);
  });

  it('does not take other comments for a record', () => {
    assert.equal(decodeRecord('managed by someone else'), undefined);
    assert.equal(decodeRecord('tproxy v1 families= fwmark=1 table=x'), undefined);
    assert.equal(decodeRecord(undefined), undefined);
  });
});

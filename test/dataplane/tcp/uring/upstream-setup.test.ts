import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../../../src/core/net/constants.js';
import { upstreamSetup } from '../../../../src/dataplane/tcp/uring/upstream-setup.js';

const client4 = { family: 4, address: '198.51.100.10', port: 40_000 } as const;
const client6 = { family: 6, address: '2001:db8:1::10', port: 40_000 } as const;
const transparent = { kind: 'transparent', name: 'transparent' } as const;
const direct = { kind: 'direct', name: 'direct' } as const;
const labels = (s: ReturnType<typeof upstreamSetup>): string[] => s.options.map((o) => o.label);

describe('the uring engine: upstream socket setup as ring operations', () => {
  it('transparent: the options openUpstreamSocket sets, in its order, then the bind to the client', () => {
    const s = upstreamSetup(client4, transparent, { dscp: false, ttl: false }, false, false);
    assert.equal(s.domain, C.AF_INET);
    assert.deepEqual(labels(s), ['SO_REUSEADDR', 'IP_TRANSPARENT', 'SO_MARK', 'TCP_NODELAY', 'SO_LINGER']);
    assert.deepEqual(s.bind, client4);
    const mark = s.options.find((o) => o.label === 'SO_MARK');
    assert.deepEqual([mark?.level, mark?.name, mark?.value], [C.SOL_SOCKET, C.SO_MARK, 'mark']);
    assert.equal(s.options.at(-1)?.value, 'linger', 'SO_LINGER {1, 0} takes the struct, not an int');
  });

  it("the client's port taken: no SO_REUSEADDR, IP_BIND_ADDRESS_NO_PORT and port 0", () => {
    const s = upstreamSetup(client4, transparent, { dscp: false, ttl: false }, true, false);
    assert.deepEqual(labels(s), ['IP_TRANSPARENT', 'SO_MARK', 'IP_BIND_ADDRESS_NO_PORT', 'TCP_NODELAY', 'SO_LINGER']);
    assert.deepEqual(s.bind, { ...client4, port: 0 });
  });

  it('IPv6: V6ONLY first, the IPv6 names of transparency, DSCP and TTL', () => {
    const s = upstreamSetup(client6, transparent, { dscp: true, ttl: true }, false, false);
    assert.equal(s.domain, C.AF_INET6);
    assert.deepEqual(labels(s), ['IPV6_V6ONLY', 'SO_REUSEADDR', 'IPV6_TRANSPARENT', 'SO_MARK', 'IPV6_TCLASS', 'IPV6_UNICAST_HOPS', 'TCP_NODELAY', 'SO_LINGER']);
    assert.ok(s.options.filter((o) => o.label.startsWith('IPV6_') && o.label !== 'IPV6_V6ONLY').every((o) => o.level === C.SOL_IPV6));
  });

  it('direct: no transparency, no bind (the kernel picks the address at connect)', () => {
    const s = upstreamSetup(client4, direct, { dscp: true, ttl: false }, false, false);
    assert.deepEqual(labels(s), ['SO_MARK', 'IP_TOS', 'TCP_NODELAY', 'SO_LINGER']);
    assert.equal(s.bind, undefined);
  });

  it("bytes waiting to go at connect: TCP_QUICKACK 0 (the handshake's ACK goes with them), before SO_LINGER", () => {
    const s = upstreamSetup(client4, transparent, { dscp: false, ttl: false }, false, true);
    assert.deepEqual(labels(s), ['SO_REUSEADDR', 'IP_TRANSPARENT', 'SO_MARK', 'TCP_NODELAY', 'TCP_QUICKACK', 'SO_LINGER']);
    const quickAck = s.options.find((o) => o.label === 'TCP_QUICKACK');
    assert.deepEqual([quickAck?.level, quickAck?.name, quickAck?.value], [C.IPPROTO_TCP, C.TCP_QUICKACK, 'zero']);
    assert.deepEqual(labels(upstreamSetup(client4, transparent, { dscp: false, ttl: false }, false, false)), ['SO_REUSEADDR', 'IP_TRANSPARENT', 'SO_MARK', 'TCP_NODELAY', 'SO_LINGER'], 'the lists are cached per combination: apart');
  });
});

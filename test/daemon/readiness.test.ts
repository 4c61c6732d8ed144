// Readiness judged from the daemon's state, the rules read back, the listeners and the upstreams:
// each cause of "not ready" alone, with the reason an operator reads in /readyz.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeReadiness, readinessText, upstreamProxiesOf, type ReadinessInput } from '../../src/daemon/readiness.js';

const GOOD: ReadinessInput = {
  state: 'running',
  drained: false,
  rules: { managed: true, backend: 'nft', pieces: [{ kind: 'table', name: 'inet tproxy', state: 'in place' }], unexpected: [], inPlace: true },
  listeners: [
    { name: 'web', health: { tcp: { accepting: true, workers: { running: 2, wanted: 2 } } } },
    { name: 'dns', health: { tcp: { accepting: true, workers: { running: 0, wanted: 0 } }, udp: { loopRunning: true } } },
  ],
};

describe('readiness', () => {
  it('is ready when everything holds, and the body says so', () => {
    const r = judgeReadiness(GOOD);
    assert.deepEqual(r, { ready: true, drained: false, reasons: [] });
    assert.equal(readinessText(r), 'ready\n');
  });

  const cases: [string, Partial<ReadinessInput>, RegExp][] = [
    ['starting', { state: 'starting' }, /the daemon is starting/],
    ['stopping', { state: 'stopping' }, /the daemon is stopping/],
    ['drained', { drained: true }, /drained on purpose .*tproxy undrain/],
    ['rules missing', { rules: { managed: true, backend: 'nft', pieces: [{ kind: 'rule', name: 'tproxy web', state: 'missing' }, { kind: 'table', name: 'inet tproxy', state: 'in place' }], unexpected: [], inPlace: false } }, /kernel rules are not as applied \(nft\): tproxy web missing$/],
    ['rules with extras', { rules: { managed: true, backend: 'nft', pieces: [], unexpected: ['rule "foreign"'], inPlace: false } }, /unexpected: rule "foreign"/],
    ['rules unreadable', { rules: { managed: true, backend: 'nft', error: 'nft: permission denied' } }, /could not be read \(nft\): nft: permission denied/],
    ['a TCP worker missing', { listeners: [{ name: 'web', health: { tcp: { accepting: false, workers: { running: 1, wanted: 2 } } } }] }, /listener web: 1 of 2 TCP worker processes run/],
    ['in-process TCP down', { listeners: [{ name: 'web', health: { tcp: { accepting: false, workers: { running: 0, wanted: 0 } } } }] }, /listener web: TCP is not accepting/],
    ['the UDP loop down', { listeners: [{ name: 'dns', health: { udp: { loopRunning: false } } }] }, /listener dns: the UDP relay loop is not running/],
    ['no listener', { listeners: [] }, /no listener runs/],
    ['an upstream unreachable', { upstreams: [{ outbound: 'corp', endpoint: { family: 6, address: '2001:db8::7', port: 1080 }, reachable: false, error: 'ECONNREFUSED' }] }, /outbound corp: upstream proxy \[2001:db8::7\]:1080 not reachable \(ECONNREFUSED\)/],
  ];
  it('is ready with mmproxy listeners alone (no transparent listener)', () => {
    assert.deepEqual(judgeReadiness({ ...GOOD, listeners: [], mmproxyListeners: 1 }).reasons, []);
  });
  for (const [what, change, reason] of cases) {
    it(`is not ready when ${what}`, () => {
      const r = judgeReadiness({ ...GOOD, ...change });
      assert.equal(r.ready, false);
      assert.equal(r.reasons.length, 1, r.reasons.join(' | '));
      assert.match(r.reasons[0] as string, reason);
      assert.ok(readinessText(r).startsWith('not ready\n- '));
    });
  }

  it('does not judge rules it does not manage, nor reachable upstreams', () => {
    assert.equal(judgeReadiness({ ...GOOD, rules: { managed: false }, upstreams: [{ outbound: 'corp', endpoint: { family: 4, address: '192.0.2.7', port: 1080 }, reachable: true }] }).ready, true);
  });

  it('lists every reason at once', () => {
    const r = judgeReadiness({ ...GOOD, state: 'stopping', drained: true, listeners: [{ name: 'dns', health: { udp: { loopRunning: false } } }] });
    assert.equal(r.reasons.length, 3);
  });

  it('finds each upstream proxy once, from outbounds and listeners', () => {
    const proxy = { endpoint: { family: 4 as const, address: '192.0.2.7', port: 1080 } };
    const found = upstreamProxiesOf({ outbounds: [{ name: 'corp', url: proxy }, { name: 'direct2' }], listeners: [{ name: 'web', upstreamProxy: proxy }, { name: 'alt', upstreamProxy: { endpoint: { family: 4, address: '192.0.2.8', port: 3128 } } }] });
    assert.deepEqual(found.map((u) => `${u.outbound} ${u.endpoint.address}:${u.endpoint.port}`), ['corp 192.0.2.7:1080', 'alt upstreamProxy 192.0.2.8:3128']);
  });
});

// explain's route part: the route and outbound a flow takes, whether it is sniffed, and the text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/core/config/document.js';
import { routingOf } from '../../../src/core/config/routing-of.js';
import { explainRoute, formatRouteExplanation, routeExplanationToJson } from '../../../src/core/route/explain.js';

const config = loadConfig({
  text: `outbounds:
  - { name: corp, kind: socks5, url: "socks5://alice:s3cret@192.0.2.7:1080", proxyProtocol: v2 }
listeners:
  - { intercept: ["tcp:80,443"], outbound: corp }
routes:
  - { name: lan, outbound: direct, destinations: [10.0.0.0/8], protocols: [tcp] }
  - { name: ads, outbound: reject, names: ["*.ads.example"], protocols: [tcp] }
`,
});
const [routing] = routingOf(config);
const flow = { protocol: 'tcp' as const, source: '198.51.100.10', destinationPort: 443 };

describe('explain a route', () => {
  it('a name route: sniffed, rejected, said in words', () => {
    const r = explainRoute(routing!, { ...flow, destination: '203.0.113.20', name: 'x.ads.example' });
    assert.equal(
      formatRouteExplanation(r),
      'route (listener main):\n  name x.ads.example (the listener peeks at the first bytes for it)\n  route ads (routes[1]) matches\n  outbound reject: resets the connection (TCP) or drops the datagram (UDP), counted\n',
    );
    assert.deepEqual(routeExplanationToJson(r), { listener: 'main', route: 'ads', index: 1, outbound: 'reject', outboundKind: 'reject', outboundText: 'reject', sniffed: true, name: 'x.ads.example' });
  });

  it('no name given: the default, with a hint; the password never shown', () => {
    const text = formatRouteExplanation(explainRoute(routing!, { ...flow, destination: '203.0.113.20' }));
    assert.match(text, /none given here \(--sni NAME or --host NAME\)/);
    assert.match(text, /no route matches: the listener's own outbound\n {2}outbound corp \(socks5:\/\/alice:\*\*\*@192\.0\.2\.7:1080, PROXY v2\): asks the SOCKS5 proxy to connect to the destination, after a PROXY v2 header\n$/);
    assert.doesNotMatch(text, /s3cret/);
  });

  it('UDP flows take the routes too; a name route reads the first datagram for a QUIC name', () => {
    const udp = routingOf(loadConfig({ text: 'listeners:\n  - { intercept: ["udp:443"] }\nroutes:\n  - { name: quic, outbound: reject, names: [example.com], protocols: [udp] }\n' }))[0]!;
    const named = explainRoute(udp, { ...flow, protocol: 'udp', destination: '203.0.113.20', name: 'example.com' });
    assert.equal(formatRouteExplanation(named), "route (listener main):\n  name example.com (the listener reads the session's first datagram for it)\n  route quic (routes[0]) matches\n  outbound reject: resets the connection (TCP) or drops the datagram (UDP), counted\n");
    assert.match(formatRouteExplanation(explainRoute(udp, { ...flow, protocol: 'udp', destination: '203.0.113.20' })), /for the name \(QUIC Initial SNI\); none given here \(--sni NAME\)\n {2}no route matches/);
  });

  it('an address route decides before any sniffing', () => {
    const r = explainRoute(routing!, { ...flow, destination: '10.1.2.3', name: 'x.ads.example' });
    assert.deepEqual([r.decision.route, r.sniffed], ['lan', false]);
  });
});

// Outbounds, lists and routes in the configuration: what a listener routes by, and every refusal
// with the exact text (the configuration file's line, and the list file's line).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/core/config/document.js';
import { routingOf } from '../../../src/core/config/routing-of.js';
import { isTproxyError } from '../../../src/core/errors.js';
import { formatOutbound } from '../../../src/core/route/outbound.js';

const FILES: Record<string, string> = {
  'lan.txt': '# the office\n10.0.0.0/8\n\n192.168.0.0/16  # wifi\n2001:db8:1::/48\n',
  'ads.txt': 'Ads.Example.COM\n*.tracker.example\n',
  'bad.txt': '10.0.0.0/8\n10.1.2.3/16\nnot-a-prefix\n',
};
const readFile = (file: string): string => {
  const text = FILES[file];
  if (text === undefined) throw new Error('no such file');
  return text;
};
const load = (text: string): ReturnType<typeof loadConfig> => loadConfig({ file: 'tproxy.yaml', text, readFile });

function refusal(text: string): string {
  try {
    load(text);
  } catch (error) {
    assert.ok(isTproxyError(error, 'ERR_INVALID_ARGUMENT'), String(error));
    return error.message;
  }
  assert.fail('the configuration was accepted');
}

const OUTBOUNDS = `outbounds:
  - { name: corp, kind: socks5, url: "socks5://alice:s3cret@192.0.2.7:1080" }
  - { name: web, kind: http, url: "http://192.0.2.8:3128", proxyProtocol: v1 }
  - { name: pp, kind: direct, proxyProtocol: v2 }
`;

describe('routing configuration: good ones', () => {
  it('compiles outbounds, list files and routes per listener; a listener without outbound keeps its shorthand', () => {
    const config = load(`${OUTBOUNDS}lists:
  - { name: lan, kind: prefixes, file: lan.txt, entries: [172.16.0.0/12] }
  - { name: ads, kind: names, file: ads.txt }
listeners:
  - { name: a, port: 8000, intercept: [tcp:80, "tcp:443"], outbound: corp, sniffTimeoutMs: 150 }
  - { name: b, port: 8001, intercept: [udp:53], upstream: transparent }
routes:
  - { name: lan, outbound: direct, destinationLists: [lan] }
  - { name: ads, outbound: reject, nameLists: [ads] }
  - { name: tls, outbound: web, ports: [443, "8443-8444"], listeners: [a] }
`);
    const [a, b] = routingOf(config);
    assert.equal(config.listeners[0]?.sniffTimeoutMs, 150);
    assert.deepEqual(a?.routes.map((r) => r.name), ['lan', 'ads', 'tls']);
    assert.deepEqual(b?.routes.map((r) => r.name), ['lan', 'ads']);
    assert.equal(a?.defaultOutbound.name, 'corp');
    assert.deepEqual(b?.defaultOutbound, { name: 'transparent', kind: 'transparent' });
    assert.deepEqual(a?.outbounds.map((o) => o.name).sort(), ['direct', 'reject', 'web']);
    assert.deepEqual(a?.lists, [
      { name: 'lan', kind: 'prefixes', entries: ['172.16.0.0/12', '10.0.0.0/8', '192.168.0.0/16', '2001:db8:1::/48'] },
      { name: 'ads', kind: 'names', entries: ['ads.example.com', '.tracker.example'] },
    ]);
    assert.deepEqual(config.routes[2]?.ports, [{ from: 443, to: 443 }, { from: 8443, to: 8444 }]);
  });

  it('lets UDP leave through a socks5 outbound (UDP ASSOCIATE), by route, by default and by upstreamProxy', () => {
    const [byRoute, byDefault] = routingOf(load(`${OUTBOUNDS}listeners:\n  - { name: a, port: 8000, intercept: [udp:53] }\n  - { name: b, port: 8001, intercept: [udp:54], outbound: corp }\nroutes:\n  - { name: x, outbound: corp, ports: [53], listeners: [a] }\n`));
    assert.deepEqual(byRoute?.routes.map((r) => r.outbound), ['corp']);
    assert.equal(byDefault?.defaultOutbound.kind, 'socks5');
    const [main] = routingOf(load('listeners:\n  - { intercept: [udp:53], upstreamProxy: "socks5://192.0.2.9:1080" }\n'));
    assert.equal(main?.defaultOutbound.kind, 'socks5');
  });

  it('turns upstreamProxy into the listener\'s default outbound', () => {
    const [main] = routingOf(load('listeners:\n  - upstreamProxy: "http://bob:pw@192.0.2.9:8080"\n'));
    assert.equal(main && formatOutbound(main.defaultOutbound), 'main-upstream-proxy (http://bob:***@192.0.2.9:8080)');
  });

  it('never prints a password', () => {
    const config = load(OUTBOUNDS);
    const shown = routingOf(load(`${OUTBOUNDS}routes:\n  - { name: all, outbound: corp, protocols: [tcp] }\n`))[0]?.outbounds.map(formatOutbound);
    assert.deepEqual(shown, ['corp (socks5://alice:***@192.0.2.7:1080)']);
    assert.equal(formatOutbound({ name: 'pp', kind: 'direct', proxyProtocol: 'v2' }), 'pp (direct, PROXY v2)');
    assert.equal(config.outbounds.length, 3);
  });
});

describe('routing configuration: bad ones, with the exact error', () => {
  const bad: [string, string, string][] = [
    ['a route naming an unknown outbound', 'routes:\n  - name: x\n    outbound: crop\n    ports: [22]\n', 'tproxy.yaml:3:15: routes[0].outbound: "crop" is not an outbound: use one of direct, transparent, reject, or add it under outbounds'],
    ['a missing list file', 'lists:\n  - name: lan\n    kind: prefixes\n    file: gone.txt\n', 'tproxy.yaml:4:11: lists[0].file: cannot read gone.txt: no such file; give an existing file of one prefix per line'],
    [
      'bad lines of a list file, each at its line',
      'lists:\n  - { name: lan, kind: prefixes, file: bad.txt }\n',
      '2 problems in the configuration:\n  tproxy.yaml:2:40: lists[0].file: bad.txt:2: "10.1.2.3/16" has host bits set below /16: did you mean 10.1.0.0/16?\n  tproxy.yaml:2:40: lists[0].file: bad.txt:3: "not-a-prefix" is not an IPv4 or IPv6 address or prefix (use ADDRESS/LENGTH, e.g. 10.0.0.0/8 or 2001:db8::/32)',
    ],
    ['a name list used as prefixes', 'lists:\n  - { name: ads, kind: names, entries: [ads.example] }\nroutes:\n  - { name: x, outbound: reject, destinationLists: [ads] }\n', 'tproxy.yaml:4:53: routes[0].destinationLists[0]: "ads" is a list of names, destinationLists needs prefixes: add a list of kind prefixes under lists'],
    ['an unknown list', 'routes:\n  - { name: x, outbound: reject, nameLists: [ads] }\n', 'tproxy.yaml:2:46: routes[0].nameLists[0]: "ads" is not a list: add a list of kind names under lists'],
    ['a route that could send UDP flows to a TCP-only outbound', `${OUTBOUNDS}listeners:\n  - intercept: [udp:53]\nroutes:\n  - { name: x, outbound: web }\n`, 'tproxy.yaml:8:26: routes[0].outbound: outbound web carries TCP only, but this route can match UDP flows of listener main: add protocols: [tcp], or route UDP to direct, transparent, socks5 or reject'],
    ['a route that could send UDP flows to a PROXY header outbound', `${OUTBOUNDS}listeners:\n  - intercept: [udp:53]\nroutes:\n  - { name: x, outbound: pp, ports: [53] }\n`, 'tproxy.yaml:8:26: routes[0].outbound: outbound pp carries TCP only, but this route can match UDP flows of listener main: add protocols: [tcp], or route UDP to direct, transparent, socks5 or reject'],
    ['a route named default', 'routes:\n  - { name: default, outbound: direct, ports: [1] }\n', 'tproxy.yaml:2:13: routes[0].name: "default" names the flows no route matches (in metrics and logs): give this route another name'],
    ['a route behind a route that matches everything', 'routes:\n  - { name: all, outbound: direct }\n  - { name: x, outbound: reject, ports: [22] }\n', 'tproxy.yaml:3:5: routes[1]: can never match: routes[0] (all) has no condition and matches every flow first; move it last or give it a condition'],
    ['a built-in outbound redefined', 'outbounds:\n  - { name: direct, kind: direct, proxyProtocol: v1 }\n', 'tproxy.yaml:2:13: outbounds[0].name: "direct" is a built-in outbound: give this one another name (e.g. direct-pp) and use it in routes'],
    ['a URL of the other kind', 'outbounds:\n  - { name: p, kind: http, url: "socks5://192.0.2.7" }\n', 'tproxy.yaml:2:33: outbounds[0].url: is a socks5 URL but kind is http: make them agree'],
    ['a socks5 outbound without url', 'outbounds:\n  - { name: p, kind: socks5 }\n', 'tproxy.yaml:2:5: outbounds[0].url: missing: a socks5 outbound needs the proxy\'s URL, e.g. socks5://192.0.2.7:1080'],
    ['outbound and upstreamProxy together', 'listeners:\n  - { outbound: direct, upstreamProxy: "socks5://192.0.2.7:1080" }\n', 'tproxy.yaml:2:17: listeners[0].outbound: outbound and upstreamProxy both name the way out: keep outbound (an outbound of kind socks5 or http holds the proxy)'],
    ['a reversed port range', 'routes:\n  - { name: x, outbound: direct, ports: ["9000-8000"] }\n', 'tproxy.yaml:2:42: routes[0].ports[0]: "9000-8000" is not allowed: the range is reversed: write 8000-9000'],
    ['a wildcard in the middle of a name', 'routes:\n  - { name: x, outbound: direct, names: ["a.*.example"] }\n', 'tproxy.yaml:2:42: routes[0].names[0]: "a.*.example" is not allowed: is not a domain entry: use example.com (exactly), *.example.com or .example.com (names under it), or +.example.com (both) (letters, digits, - and _ only; no address literal)'],
    ['two routes of one name', 'routes:\n  - { name: x, outbound: direct, ports: [1] }\n  - { name: x, outbound: direct, ports: [2] }\n', 'tproxy.yaml:3:13: routes[1].name: "x" is already the name of routes[0]: each needs its own name'],
    ['a listener defaulting to a TCP-only outbound while it intercepts UDP', `${OUTBOUNDS}listeners:\n  - { intercept: [udp:53], outbound: web }\n`, 'tproxy.yaml:6:38: listeners[0].outbound: outbound web carries TCP only, but this listener intercepts UDP: intercept tcp only here, or give UDP its own listener'],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what}`, () => assert.equal(refusal(text), message));
  }

  it('refuses list files where nothing can read them', () => {
    assert.match(String(assertThrows(() => loadConfig({ text: 'lists:\n  - { name: l, kind: names, file: x.txt }\n' }))), /lists\[0\]\.file: list files are read by tproxy run and tproxy config check FILE only/);
  });
});

function assertThrows(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return assert.fail('did not throw');
}

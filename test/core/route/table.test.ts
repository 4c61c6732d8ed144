// The route decision: first match wins, every condition of a route must hold, a name route never
// matches a flow without a name, a flow is sniffed only when a name could change the outcome; and, as a
// property, the compiled table decides as a plain linear scan over the routes does.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseAddress } from '../../../src/core/net/address.js';
import { parsePrefix, prefixEnd } from '../../../src/core/net/prefix.js';
import type { ListSpec, RouteSpec, RoutingConfig } from '../../../src/core/route/config.js';
import type { Outbound } from '../../../src/core/route/outbound.js';
import { type RouteFlow, RouteTable } from '../../../src/core/route/table.js';

const OUT: Record<string, Outbound> = {
  direct: { name: 'direct', kind: 'direct' },
  reject: { name: 'reject', kind: 'reject' },
  corp: { name: 'corp', kind: 'socks5', proxy: { protocol: 'socks5', endpoint: { family: 4, address: '192.0.2.7', port: 1080 } } },
};

function route(name: string, outbound: string, match: Partial<Omit<RouteSpec, 'name' | 'outbound'>>): RouteSpec {
  return { name, outbound, destinations: [], destinationLists: [], sources: [], sourceLists: [], ports: [], protocols: [], listeners: [], names: [], nameLists: [], ...match };
}

function table(routes: RouteSpec[], lists: ListSpec[] = []): RouteTable {
  const config: RoutingConfig = { listener: 'main', defaultOutbound: OUT.corp as Outbound, outbounds: Object.values(OUT), lists, routes };
  return RouteTable.compile(config);
}

const flow = (f: Partial<RouteFlow>): RouteFlow => ({ protocol: 'tcp', source: '198.51.100.10', destination: '203.0.113.20', destinationPort: 443, ...f });
const decided = (t: RouteTable, f: Partial<RouteFlow>): string => {
  const d = t.decide(flow(f));
  return `${d.route ?? '-'}:${d.outbound.name}`;
};

describe('route table', () => {
  const t = table(
    [
      route('lan', 'direct', { destinationLists: ['lan'] }),
      route('ssh', 'reject', { ports: [{ from: 22, to: 22 }, { from: 2200, to: 2299 }], protocols: ['tcp'] }),
      route('office', 'direct', { sources: ['198.51.100.128/25'], protocols: ['udp'] }),
      route('ads', 'reject', { names: ['.ads.example', 'tracker.example'] }),
      route('v6', 'direct', { destinations: ['2001:db8:2::/48'] }),
    ],
    [{ name: 'lan', kind: 'prefixes', entries: ['192.0.2.0/24', '10.0.0.0/8'] }],
  );

  it('takes the first route whose every condition holds, else the listener default', () => {
    assert.equal(decided(t, { destination: '10.1.2.3', destinationPort: 22 }), 'lan:direct');
    assert.equal(decided(t, { destinationPort: 22 }), 'ssh:reject');
    assert.equal(decided(t, { destinationPort: 2250 }), 'ssh:reject');
    assert.equal(decided(t, { destinationPort: 2300 }), '-:corp');
    assert.equal(decided(t, { protocol: 'udp', destinationPort: 22 }), '-:corp');
    assert.equal(decided(t, { protocol: 'udp', source: '198.51.100.200' }), 'office:direct');
    assert.equal(decided(t, { protocol: 'tcp', source: '198.51.100.200' }), '-:corp');
    assert.equal(decided(t, { destination: '2001:db8:2::20', source: '2001:db8:1::10' }), 'v6:direct');
    assert.equal(decided(t, { destination: '2001:db8:3::20', source: '2001:db8:1::10' }), '-:corp');
  });

  it('matches names exactly or below a suffix, and never without a name', () => {
    assert.equal(decided(t, { name: 'x.ads.example' }), 'ads:reject');
    assert.equal(decided(t, { name: 'tracker.example' }), 'ads:reject');
    assert.equal(decided(t, { name: 'a.tracker.example' }), '-:corp');
    assert.equal(decided(t, {}), '-:corp');
    assert.equal(decided(t, { name: 'x.ads.example', destination: '10.0.0.1' }), 'lan:direct');
  });

  it('wants a name only when a name route could come first', () => {
    assert.equal(t.needsName, true);
    assert.equal(t.decideUnnamed(flow({})), 'sniff');
    assert.deepEqual(t.decideUnnamed(flow({ destination: '10.0.0.1' })), t.decide(flow({ destination: '10.0.0.1' })), 'lan decides before any name route');
    assert.equal(t.decideUnnamed(flow({ destinationPort: 22 })), t.decide(flow({ destinationPort: 22 })), 'ssh decides before any name route');
    assert.deepEqual(t.decideUnnamed(flow({ destination: '2001:db8:2::1', source: '2001:db8:1::1', name: 'x.ads.example' })), 'sniff', 'a name route comes before v6');
    const noNames = table([route('lan', 'direct', { destinations: ['10.0.0.0/8'] })]);
    assert.equal(noNames.needsName, false);
    assert.deepEqual(noNames.decideUnnamed(flow({})), { outbound: OUT.corp });
  });

  it('reports the route index for explain', () => {
    assert.deepEqual(t.decide(flow({ destinationPort: 22 })), { route: 'ssh', index: 1, outbound: OUT.reject });
    assert.deepEqual(t.decide(flow({ destinationPort: 80 })), { outbound: OUT.corp });
  });
});

// ---- the property: compiled decisions equal a plain scan ------------------------------------------

function inPrefix(address: string, prefix: string): boolean {
  const a = parseAddress(address);
  const p = parsePrefix(prefix, 'prefix');
  return a !== undefined && a.family === p.family && a.value >= p.start && a.value <= prefixEnd(p);
}

function nameIn(name: string | undefined, entries: readonly string[]): boolean {
  return name !== undefined && entries.some((e) => (e.startsWith('.') ? name.endsWith(e) : name === e));
}

function reference(routes: readonly RouteSpec[], lists: readonly ListSpec[], f: RouteFlow): string {
  const entries = (names: readonly string[]): string[] => names.flatMap((n) => lists.find((l) => l.name === n)?.entries ?? []);
  for (const r of routes) {
    const dst = [...r.destinations, ...entries(r.destinationLists)];
    const src = [...r.sources, ...entries(r.sourceLists)];
    const names = [...r.names, ...entries(r.nameLists)];
    if (r.protocols.length > 0 && !r.protocols.includes(f.protocol)) continue;
    if (r.ports.length > 0 && !r.ports.some((p) => f.destinationPort >= p.from && f.destinationPort <= p.to)) continue;
    if (dst.length > 0 && !dst.some((p) => inPrefix(f.destination, p))) continue;
    if (src.length > 0 && !src.some((p) => inPrefix(f.source, p))) continue;
    if (names.length > 0 && !nameIn(f.name, names)) continue;
    return r.name;
  }
  return '-';
}

const octet = fc.integer({ min: 0, max: 3 });
const address4 = fc.tuple(octet, octet, octet).map(([a, b, c]) => `10.${a}.${b}.${c}`);
const prefix4 = fc.tuple(octet, octet, octet, fc.constantFrom(8, 16, 22, 24, 30, 32)).map(([a, b, c, len]) => {
  const n = (((10 << 24) | (a << 16) | (b << 8) | c) >>> 0) & ((0xffffffff << (32 - len)) >>> 0);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
});
const label = fc.constantFrom('a', 'b', 'c');
const name = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => `${ls.join('.')}.example`);
const nameEntry = fc.tuple(name, fc.boolean()).map(([n, suffix]) => (suffix ? `.${n}` : n));
const port = fc.integer({ min: 1, max: 40 });
const portRange = fc.tuple(port, port).map(([a, b]) => ({ from: Math.min(a, b), to: Math.max(a, b) }));
const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.oneof(fc.constant<T[]>([]), fc.array(arb, { minLength: 1, maxLength: 3 }));
const routeArb = fc.record({
  destinations: maybe(prefix4),
  destinationLists: fc.oneof(fc.constant([]), fc.constant(['p'])),
  sources: maybe(prefix4),
  ports: maybe(portRange),
  protocols: fc.oneof(fc.constant([]), fc.constant(['tcp' as const]), fc.constant(['udp' as const])),
  names: maybe(nameEntry),
  nameLists: fc.oneof(fc.constant([]), fc.constant(['n'])),
});
const flowArb = fc.record({ protocol: fc.constantFrom('tcp' as const, 'udp' as const), source: address4, destination: address4, destinationPort: port, name: fc.option(name, { nil: undefined }) });

describe('route table, as a property', () => {
  it('decides as the first route of a linear scan does (seeded)', () => {
    fc.assert(
      fc.property(fc.array(routeArb, { maxLength: 6 }), fc.array(prefix4, { minLength: 1, maxLength: 5 }), fc.array(nameEntry, { minLength: 1, maxLength: 5 }), fc.array(flowArb, { minLength: 1, maxLength: 20 }), (specs, listPrefixes, listNames, flows) => {
        const routes = specs.map((s, i) => route(`r${i}`, i % 2 === 0 ? 'direct' : 'reject', s));
        const lists: ListSpec[] = [
          { name: 'p', kind: 'prefixes', entries: listPrefixes },
          { name: 'n', kind: 'names', entries: listNames },
        ];
        const t = table(routes, lists);
        for (const f of flows) {
          const got = t.decide(f).route ?? '-';
          assert.equal(got, reference(routes, lists, f), JSON.stringify(f));
          // Decided without sniffing: exactly the decision of an unnamed flow, and no name changes it.
          const unnamed = t.decideUnnamed({ ...f, name: undefined });
          if (unnamed !== 'sniff') {
            assert.deepEqual(unnamed, t.decide({ ...f, name: undefined }));
            assert.equal(t.decide(f).route ?? '-', unnamed.route ?? '-');
          }
        }
      }),
      { seed: 15, numRuns: 300 },
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explainPacket, type Explanation } from '../../../src/core/model/explain.js';
import type { World } from '../../../src/core/model/world.js';
import { accept, counter, drop, goto, jump, match, meta, packet, payload, ret, routerWorld, ruleset, setMark, sock, tproxy } from '../../helpers/model.js';

const tcp80 = [match(payload('tcp', 'dport'), 80)];
const intercept = [...tcp80, tproxy(8000), setMark(1), counter, accept];
const listener = sock('tcp', 'listen', '0.0.0.0:8000', { transparent: true });
const syn = 'tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 syn';

interface Case {
  name: string;
  world: Partial<World>;
  packet: string;
  local?: boolean;
  expect: (e: Explanation) => void;
}

const kind = (k: string) => (e: Explanation) => assert.equal(e.outcome.kind, k, JSON.stringify(e.outcome));

const cases: Case[] = [
  {
    name: 'tproxy with a transparent listener delivers to it, mark set, counter counted',
    world: { ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [intercept] }] }]), sockets: [listener] },
    packet: syn,
    expect: (e) => {
      assert.deepEqual(e.outcome, { kind: 'delivered', via: 'tproxy' });
      assert.equal(e.socket, listener);
      assert.equal(e.packet.mark, 1);
      assert.equal(e.counted.length, 1);
    },
  },
  {
    name: 'nft tproxy without a socket does not match: forwarded untouched (fail-open)',
    world: { ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [intercept] }] }]) },
    packet: syn,
    expect: (e) => {
      assert.equal(e.outcome.kind, 'forwarded');
      assert.equal(e.oif, 'eth1');
      assert.equal(e.packet.mark, 0);
      assert.equal(e.packet.ttl, 63);
      assert.equal(e.counted.length, 0);
    },
  },
  {
    name: 'a listener without IP_TRANSPARENT does not count',
    world: { ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [intercept] }] }]), sockets: [sock('tcp', 'listen', '0.0.0.0:8000')] },
    packet: syn,
    expect: (e) => {
      kind('forwarded')(e);
      assert.ok(e.trace.some((s) => /not transparent/.test(s.text)));
    },
  },
  {
    name: 'accept ends one base chain only: a later chain still drops',
    world: { ruleset: ruleset([{ chains: [{ name: 'a', hook: 'prerouting', prio: -150, rules: [[accept]] }, { name: 'b', hook: 'prerouting', prio: 0, rules: [[...tcp80, drop]] }] }]) },
    packet: syn,
    expect: (e) => {
      kind('dropped')(e);
      assert.match((e.outcome as { by: string }).by, /drop in inet t b/);
    },
  },
  {
    name: 'chains run in priority order, not in listing order',
    world: { ruleset: ruleset([{ chains: [{ name: 'late', hook: 'prerouting', prio: 10, rules: [[setMark(2)]] }, { name: 'early', hook: 'prerouting', prio: -300, rules: [[setMark(5)]] }] }]) },
    packet: syn,
    expect: (e) => assert.equal(e.packet.mark, 2),
  },
  {
    name: 'drop in an early chain ends everything',
    world: { ruleset: ruleset([{ chains: [{ name: 'a', hook: 'prerouting', prio: -300, rules: [[drop]] }, { name: 'b', hook: 'prerouting', rules: [intercept] }] }]), sockets: [listener] },
    packet: syn,
    expect: kind('dropped'),
  },
  {
    name: 'jump and return come back to the next rule',
    world: {
      ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [[jump('sub')], [setMark(7)]] }, { name: 'sub', rules: [[setMark(3)], [ret], [drop]] }] }]),
    },
    packet: syn,
    expect: (e) => assert.equal(e.packet.mark, 7),
  },
  {
    name: 'goto does not come back: the end of the target applies the base policy',
    world: { ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', policy: 'drop', rules: [[goto('sub')], [accept]] }, { name: 'sub', rules: [[setMark(3)]] }] }]) },
    packet: syn,
    expect: (e) => {
      kind('dropped')(e);
      assert.match((e.outcome as { by: string }).by, /policy drop/);
    },
  },
  {
    name: 'a jump loop stops at the kernel stack depth',
    world: { ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [[jump('x')]] }, { name: 'x', rules: [[jump('x')]] }] }]) },
    packet: syn,
    expect: (e) => assert.match((e.outcome as { by: string }).by, /jump depth/),
  },
  {
    name: 'a tproxy socket with no fwmark route is dropped in forwarding',
    world: { ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [[...tcp80, tproxy(8000), accept]] }] }]), sockets: [listener] },
    packet: syn,
    expect: (e) => {
      assert.equal(e.outcome.kind, 'dropped');
      assert.equal((e.outcome as { stage: string }).stage, 'forward');
    },
  },
  {
    name: 'divert: an established transparent socket gets the ACK by socket lookup',
    world: {
      ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [[match({ socket: { key: 'transparent' } }, 1), setMark(1), accept], intercept] }] }]),
      sockets: [listener, sock('tcp', 'established', '203.0.113.20:80', { remote: '198.51.100.10:40000', transparent: true })],
    },
    packet: 'tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 ack',
    expect: (e) => {
      assert.deepEqual(e.outcome, { kind: 'delivered', via: 'lookup' });
      assert.equal(e.socket?.state, 'established');
    },
  },
  {
    name: 'a new SYN retires a TIME_WAIT socket in favour of the listener',
    world: {
      ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [intercept] }] }]),
      sockets: [listener, sock('tcp', 'time-wait', '203.0.113.20:80', { remote: '198.51.100.10:40000', transparent: true })],
    },
    packet: syn,
    expect: (e) => {
      assert.equal(e.socket, listener);
      assert.ok(e.trace.some((s) => /TIME_WAIT socket retired/.test(s.text)));
    },
  },
  {
    name: 'a non-SYN on a TIME_WAIT pair is answered by the TIME_WAIT socket',
    world: {
      ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [intercept] }] }]),
      sockets: [listener, sock('tcp', 'time-wait', '203.0.113.20:80', { remote: '198.51.100.10:40000', transparent: true })],
    },
    packet: 'tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 ack',
    expect: kind('answered-by-time-wait'),
  },
  {
    name: 'IPv6 in an inet table with tproxy ip6',
    world: { ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [[...tcp80, tproxy(8000, 'ip6'), setMark(1), accept]] }] }]), sockets: [sock('tcp', 'listen', '[::]:8000', { transparent: true, v6only: true })] },
    packet: 'tcp [2001:db8:1::10]:40000 -> [2001:db8:2::20]:80 iif eth0 syn',
    expect: (e) => assert.deepEqual(e.outcome, { kind: 'delivered', via: 'tproxy' }),
  },
  {
    name: 'tproxy ip does not apply to IPv6',
    world: { ruleset: ruleset([{ chains: [{ name: 'pre', hook: 'prerouting', rules: [[...tcp80, tproxy(8000, 'ip'), setMark(1), accept]] }] }]), sockets: [sock('tcp', 'listen', '[::]:8000', { transparent: true })] },
    packet: 'tcp [2001:db8:1::10]:40000 -> [2001:db8:2::20]:80 iif eth0 syn',
    expect: kind('forwarded'),
  },
  {
    name: 'UDP to a port with no socket: port unreachable',
    world: {},
    packet: 'udp 198.51.100.10:5000 -> 198.51.100.1:53 iif eth0',
    expect: (e) => assert.equal((e.outcome as { reply?: string }).reply, 'icmp port-unreachable'),
  },
  {
    name: 'TTL 1 expires in forwarding',
    world: {},
    packet: `${syn} ttl 1`,
    expect: (e) => assert.match((e.outcome as { by: string }).by, /TTL 1 expires/),
  },
  {
    name: 'forwarding disabled drops forwarded packets',
    world: { sysctls: { 'net.ipv4.ip_forward': '0' } },
    packet: syn,
    expect: (e) => assert.match((e.outcome as { by: string }).by, /forwarding is disabled/),
  },
  {
    name: 'local traffic marked in output is rerouted through lo into tproxy',
    world: {
      ruleset: ruleset([
        { chains: [{ name: 'out', hook: 'output', type: 'route', rules: [[...tcp80, setMark(1)]] }, { name: 'pre', hook: 'prerouting', rules: [[match(meta('iifname'), 'lo'), ...intercept]] }] },
      ]),
      sockets: [listener],
    },
    packet: 'tcp 203.0.113.1:40000 -> 203.0.113.20:80 local syn',
    local: true,
    expect: (e) => {
      assert.deepEqual(e.outcome, { kind: 'delivered', via: 'tproxy' });
      assert.equal(e.packet.iif, 'lo');
    },
  },
  {
    name: 'local traffic without a mark leaves through its interface',
    world: { sockets: [listener] },
    packet: 'tcp 203.0.113.1:40000 -> 203.0.113.20:80 local syn',
    local: true,
    expect: (e) => {
      assert.equal(e.outcome.kind, 'sent');
      assert.equal(e.oif, 'eth1');
    },
  },
];

describe('explainPacket', () => {
  for (const c of cases) {
    it(c.name, () => {
      const e = explainPacket(routerWorld(c.world), packet(c.packet), { origin: c.local ? 'local' : 'wire' });
      c.expect(e);
    });
  }
});

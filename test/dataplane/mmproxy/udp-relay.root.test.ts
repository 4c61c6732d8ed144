// The mmproxy UDP listener in namespaces (issue 16): a sender written for the test plays the
// balancer (client namespace) and sends PROXY v2 DGRAM headers plus payload for two clients to the
// listener on the router; UDP echo backends on the router's loopback and on the server answer with
// the source they saw. The echo sees each client's own address and port, its replies come back to
// the sender without a header, IPv4 and IPv6; a bad signature, a truncated header, a TCP (STREAM)
// header, a LOCAL header and a source not allowed are dropped and counted, while good datagrams go
// on. The replies are routed by the rules tproxy plans for mmproxy with UDP (go-mmproxy's loopback
// policy rule, the UDP divert rule and fwmark route), applied inside the router namespace.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RulesController } from '../../../src/control/apply.js';
import { singleListenerRules } from '../../../src/core/rules/config.js';
import { planRules } from '../../../src/core/rules/plan.js';
import { encodeProxyHeaderV2 } from '../../../src/core/proxy-protocol/v2.js';
import type { Endpoint } from '../../../src/core/net/sockaddr.js';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { Lab, LAB_ADDRESSES } from '../../../src/lab/topology.js';
import type { MmproxyUdpConfig } from '../../../src/dataplane/mmproxy/udp-relay.js';
import { MMPROXY_UDP_AGENT, UDP_PEERS } from '../../helpers/paths.js';
import { until } from '../../helpers/until.js';

const LISTEN = { 4: LAB_ADDRESSES.routerClientSide.ipv4, 6: LAB_ADDRESSES.routerClientSide.ipv6 } as const;
const SERVER = { 4: LAB_ADDRESSES.server.ipv4, 6: LAB_ADDRESSES.server.ipv6 } as const;
const LOOPBACK = { 4: '127.0.0.1', 6: '::1' } as const;
/** The clients the headers name (not configured anywhere: bound with IP_FREEBIND). */
const CLIENTS = { 4: ['192.0.2.10', '192.0.2.11'], 6: ['2001:db8:99::10', '2001:db8:99::11'] } as const;
const PORT = 8443;
const ECHO = 7007;

type Line = { type: string; seq?: number; sessions?: number; headersProxy?: number; headersLocal?: number; rejected?: Record<string, number>; closed?: Record<string, number>; connectErrors?: Record<string, number> };

const ep = (address: string, port: number): Endpoint => ({ family: address.includes(':') ? 6 : 4, address, port });
function datagram(source: Endpoint, destination: Endpoint, payload: string, transport: 'udp' | 'tcp' = 'udp'): string {
  return Buffer.concat([encodeProxyHeaderV2({ command: 'proxy', transport, addresses: { source, destination } }), Buffer.from(payload)]).toString('hex');
}

describe('mmproxy UDP: PROXY v2 per datagram, backends on loopback and on another host (root)', () => {
  let lab: Lab;
  let agent: ReturnType<Lab['spawn']>;
  let lines: JsonLines<Line>;
  before(async () => {
    lab = await Lab.create();
    try {
      const plan = planRules({ ...singleListenerRules([{ transport: 'tcp', ports: [{ from: 9, to: 9 }] }], { port: 8009, families: [4, 6] }, { tableName: 'tproxy_test_mmudp' }), mmproxy: { loopback: [4, 6], divert: [4, 6], transports: ['udp'], upstreamMarks: [2] } });
      await new RulesController(lab.runnerFor('router')).apply(plan);
      // The backend on loopback binds the loopback addresses: go-mmproxy's rule matches the replies'
      // source (`from 127.0.0.0/8`), which a wildcard-bound UDP socket leaves to the route lookup.
      for (const host of ['router', 'server'] as const) {
        const echo = lab.spawn(host, [process.execPath, UDP_PEERS, 'echo', String(ECHO), ...(host === 'router' ? [LOOPBACK[4], LOOPBACK[6]] : [])]);
        await new JsonLines<Line>(echo.child.stdout!).waitFor((l) => l.type === 'ready', 10_000, `the echo on ${host}`);
      }
      const config: MmproxyUdpConfig = {
        name: 'dns',
        listen: [{ address: LISTEN[4], port: PORT }, { address: LISTEN[6], port: PORT }],
        allowedSources: [`${LAB_ADDRESSES.client.ipv4}/32`, `${LAB_ADDRESSES.client.ipv6}/128`],
        maxHeaderBytes: 512,
        upstreamMark: 0x2,
        idleTimeoutMs: 60_000,
        maxSessions: 64,
      };
      agent = lab.spawn('router', [process.execPath, MMPROXY_UDP_AGENT, JSON.stringify(config)]);
      lines = new JsonLines<Line>(agent.child.stdout!);
      await lines.waitFor((l) => l.type === 'ready', 10_000, 'the mmproxy UDP listener ready');
    } catch (error) {
      await lab.destroy();
      throw error;
    }
  });
  after(async () => {
    await lab?.destroy();
  });

  it('sessions are capped, end when idle, and end on the backend\'s port unreachable', async () => {
    const config: MmproxyUdpConfig = { name: 'small', listen: [{ address: LISTEN[4], port: PORT + 1 }], allowedSources: [`${LAB_ADDRESSES.client.ipv4}/32`], maxHeaderBytes: 512, upstreamMark: 0x2, idleTimeoutMs: 500, maxSessions: 1 };
    const small = lab.spawn('router', [process.execPath, MMPROXY_UDP_AGENT, JSON.stringify(config)]);
    const out = new JsonLines<Line>(small.child.stdout!);
    await out.waitFor((l) => l.type === 'ready', 10_000, 'the small mmproxy UDP listener ready');
    let seq = 0;
    const smallCounters = async (): Promise<Line> => {
      const n = ++seq;
      small.child.stdin!.write(`counters ${n}\n`);
      return out.waitFor((l) => l.type === 'counters' && l.seq === n, 5000, 'the counters');
    };
    const sendSmall = async (expected: number, hex: string[]): Promise<string[]> => {
      const sender = lab.spawn('client', [process.execPath, UDP_PEERS, 'send', LISTEN[4], String(PORT + 1), String(expected), ...hex]);
      const o = await new JsonLines<{ replies: string[] }>(sender.child.stdout!).waitFor(() => true, 15_000, 'the sender');
      await sender.exited;
      return o.replies;
    };
    const first = datagram(ep('192.0.2.40', 40_040), ep(SERVER[4], ECHO), 'first');
    const second = datagram(ep('192.0.2.41', 40_041), ep(SERVER[4], ECHO), 'second');
    // The second flow finds the one session taken: dropped and counted; the first is answered.
    assert.deepEqual(await sendSmall(1, [first, second]), ['192.0.2.40:40040|first']);
    assert.equal((await smallCounters()).rejected?.['session-limit'], 1);
    // Idle for 500 ms: closed, and the second flow gets the place.
    await until(smallCounters, (c) => c.closed?.['idle'] === 1 && c.sessions === 0, 5000, 'the idle session closed');
    assert.deepEqual(await sendSmall(1, [second]), ['192.0.2.41:40041|second']);
    await until(smallCounters, (c) => c.sessions === 0, 5000, 'the idle session closed');
    // Nothing listens on the loopback port: the ICMP port unreachable ends the session.
    assert.deepEqual(await sendSmall(0, [datagram(ep('192.0.2.42', 40_042), ep(LOOPBACK[4], ECHO + 1), 'nobody')]), []);
    await until(smallCounters, (c) => c.closed?.['ECONNREFUSED'] === 1 && c.sessions === 0, 5000, 'the session ended by ECONNREFUSED');
    small.child.kill('SIGTERM');
    assert.equal(await small.exited, 0);
  });

  let asked = 0;
  const counters = async (): Promise<Line> => {
    const seq = ++asked;
    agent.child.stdin!.write(`counters ${seq}\n`);
    return lines.waitFor((l) => l.type === 'counters' && l.seq === seq, 5000, 'the counters');
  };
  const send = async (host: 'client' | 'router', family: 4 | 6, expected: number, hex: string[]): Promise<string[]> => {
    const sender = lab.spawn(host, [process.execPath, UDP_PEERS, 'send', LISTEN[family], String(PORT), String(expected), ...hex]);
    const out = await new JsonLines<{ replies: string[] }>(sender.child.stdout!).waitFor(() => true, 15_000, 'the sender');
    await sender.exited;
    return out.replies;
  };

  for (const family of [4, 6] as const) {
    it(`IPv${family}: two clients, backend on loopback and on the server: each echo sees the client's own address and port, replies come back`, async () => {
      const before = await counters();
      const [a, b] = CLIENTS[family];
      const hex = [
        datagram(ep(a, 40_001), ep(LOOPBACK[family], ECHO), 'a-local'),
        datagram(ep(b, 40_002), ep(LOOPBACK[family], ECHO), 'b-local'),
        datagram(ep(a, 40_001), ep(SERVER[family], ECHO), 'a-remote'),
        datagram(ep(b, 40_002), ep(SERVER[family], ECHO), 'b-remote'),
        // A second datagram of a flow from the same balancer socket goes through its session.
        datagram(ep(a, 40_001), ep(SERVER[family], ECHO), 'a-again'),
      ];
      const replies = await send('client', family, 5, hex);
      assert.deepEqual(
        [...replies].sort(),
        [`${a}:40001|a-local`, `${a}:40001|a-remote`, `${a}:40001|a-again`, `${b}:40002|b-local`, `${b}:40002|b-remote`].sort(),
        `every echo saw the header's client, and every reply came back without a header (counters ${JSON.stringify(await counters())})`,
      );
      const after = await counters();
      assert.equal((after.headersProxy ?? 0) - (before.headersProxy ?? 0), 5);
      assert.equal((after.sessions ?? 0) - (before.sessions ?? 0), 4, 'one session per (balancer, client, destination)');
    });
  }

  it('bad signature, truncated, STREAM, LOCAL and a source not allowed are dropped and counted; good datagrams beside them go on', async () => {
    const before = await counters();
    const good = datagram(ep('192.0.2.20', 40_020), ep(SERVER[4], ECHO), 'good');
    const v2 = datagram(ep('192.0.2.21', 40_021), ep(SERVER[4], ECHO), 'x');
    const badSignature = `ff${v2.slice(2)}`;
    const truncated = v2.slice(0, 20 * 2);
    const stream = datagram(ep('192.0.2.22', 40_022), ep(SERVER[4], ECHO), 'tcp', 'tcp');
    const local = Buffer.concat([encodeProxyHeaderV2({ command: 'local', transport: 'unspec' }), Buffer.from('health')]).toString('hex');
    // The good one last: its reply arriving means the bad ones before it were all read.
    const replies = await send('client', 4, 1, [badSignature, truncated, stream, local, good]);
    assert.deepEqual(replies, ['192.0.2.20:40020|good'], 'only the good datagram was relayed and answered');
    // From the router itself (198.51.100.1): not among the allowed sources.
    assert.deepEqual(await send('router', 4, 0, [datagram(ep('192.0.2.23', 40_023), ep(SERVER[4], ECHO), 'not allowed')]), []);
    const after = await until(counters, (c) => (c.rejected?.['source-not-allowed'] ?? 0) > (before.rejected?.['source-not-allowed'] ?? 0), 5000, 'the datagram from a source not allowed counted');
    const delta = (key: string): number => (after.rejected?.[key] ?? 0) - (before.rejected?.[key] ?? 0);
    assert.deepEqual({ badSignature: delta('bad-signature'), truncated: delta('truncated'), notDgram: delta('not-dgram'), notAllowed: delta('source-not-allowed') }, { badSignature: 1, truncated: 1, notDgram: 1, notAllowed: 1 });
    assert.equal((after.headersLocal ?? 0) - (before.headersLocal ?? 0), 1, 'the LOCAL header counted as a health check');
    assert.equal((after.headersProxy ?? 0) - (before.headersProxy ?? 0), 1);
  });
});

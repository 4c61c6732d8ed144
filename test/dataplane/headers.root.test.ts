// What --set-dscp / --set-ttl promise, on the wire: captures at the server and at the client of
// the packets the proxy sends toward the server and back to the client, TCP (both engines) and
// UDP, IPv4 and IPv6; and --set-dscp copy carrying the client's own DSCP through.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A, Lab } from '../../src/lab/topology.js';
import { startCapture, type CapturedPacket } from '../helpers/capture.js';
import { TCP_PEER } from '../helpers/paths.js';
import { agent, startEchoServer, startProxy } from '../helpers/udp-lab.js';

const SERVERS: readonly string[] = [A.server.ipv4, A.server.ipv6];
const RULES = ['--intercept', 'tcp:81', '--intercept', 'udp:80', '--listen', '8300', '--workers', '1'];

interface Legs {
  /** Captured at the server: sent by the proxy toward the server. */
  readonly toServer: CapturedPacket[];
  /** Captured at the client: sent by the proxy back to the client (as the server). */
  readonly toClient: CapturedPacket[];
}

/** One TCP and one UDP exchange per family through the running proxy, captured at both ends. */
async function exchange(lab: Lab, udp: boolean): Promise<Legs> {
  const atServer = await startCapture(lab, 'server');
  const atClient = await startCapture(lab, 'client');
  for (const server of SERVERS) {
    const tcp = await lab.run('client', [process.execPath, TCP_PEER, 'client', 'peer', server, '81'], { timeoutMs: 30_000 });
    assert.equal((JSON.parse(tcp.stdout.trim().split('\n').pop() ?? '{}') as { how: string }).how, 'end', `TCP to ${server}`);
    if (udp) {
      const probe = await agent<{ ok: boolean; reason?: string }>(lab, 'client', ['probe', 'udp', server, '80', `headers ${server}`]);
      assert.equal(probe.ok, true, probe.reason);
    }
  }
  const server = await atServer.stop();
  const client = await atClient.stop();
  return {
    toServer: server.filter((p) => SERVERS.includes(p.destination)),
    toClient: client.filter((p) => SERVERS.includes(p.source)),
  };
}

/** A UDP datagram, or a TCP segment with payload (tcpdump's last `length N` is the payload's). */
function carriesData(p: CapturedPacket): boolean {
  const lengths = [...p.line.matchAll(/length (\d+)/g)];
  return p.line.includes(' UDP, ') || Number(lengths[lengths.length - 1]?.[1] ?? 0) > 0;
}

function assertAll(packets: CapturedPacket[], what: string, expected: { dscp: number; ttl: number }, families: readonly (4 | 6)[] = [4, 6], minimum = 3): void {
  for (const family of families) {
    const of = packets.filter((p) => p.family === family);
    assert.ok(of.length >= minimum, `${what} IPv${family}: ${of.length} packets captured`);
    for (const p of of) {
      assert.equal(p.dscp, expected.dscp, `${what} IPv${family} DSCP: ${p.line}`);
      assert.equal(p.ttl, expected.ttl, `${what} IPv${family} TTL: ${p.line}`);
    }
  }
}

describe('sent headers: --set-dscp and --set-ttl on the wire (root)', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create();
    const server = lab.spawn('server', [process.execPath, TCP_PEER, 'server', '--port', '81']);
    await new Promise<void>((resolve) => server.child.stdout!.once('data', () => resolve()));
    await startEchoServer(lab, 80);
  });
  after(() => lab.destroy());

  it('without them the proxy sends DSCP 0 and TTL 64 both ways (the baseline the other cases differ from)', async () => {
    const proxy = await startProxy(lab, RULES);
    const legs = await exchange(lab, true);
    await proxy.stop();
    assertAll(legs.toServer, 'proxy -> server', { dscp: 0, ttl: 64 });
    assertAll(legs.toClient, 'proxy -> client', { dscp: 0, ttl: 64 });
  });

  for (const engine of ['splice', 'stream'] as const) {
    it(`--set-dscp ef --set-ttl 42 (${engine} engine): every packet the proxy sends toward the server and back to the client carries DSCP 46 and TTL / hop limit 42, TCP and UDP, IPv4 and IPv6`, async () => {
      const proxy = await startProxy(lab, [...RULES, '--tcp-engine', engine, '--set-dscp', 'ef', '--set-ttl', '42']);
      const legs = await exchange(lab, engine === 'splice');
      await proxy.stop();
      assertAll(legs.toServer, 'proxy -> server', { dscp: 46, ttl: 42 });
      assertAll(legs.toClient, 'proxy -> client', { dscp: 46, ttl: 42 });
    });
  }

  it('--set-dscp copy: each flow carries the DSCP its client sent (AF41 set on the client), both ways, TCP and UDP', async () => {
    // The client marks its own traffic: an nftables rule in the client's namespace.
    await lab.run('client', ['nft', '-f', '-'], {
      input: 'table inet client_marks { chain out { type filter hook output priority 0; ip dscp set af41; ip6 dscp set af41; }; }\n',
    });
    try {
      for (const engine of ['splice', 'stream'] as const) {
        const proxy = await startProxy(lab, [...RULES, '--tcp-engine', engine, '--set-dscp', 'copy']);
        const legs = await exchange(lab, engine === 'splice');
        await proxy.stop();
        assertAll(legs.toServer, `${engine}: proxy -> server`, { dscp: 34, ttl: 64 });
        // The kernel answers the SYN (and may ACK the client's first bytes) before the proxy takes
        // the connection and sets the copy, so those carry the listener's DSCP (0); every packet
        // with data the proxy sends back carries the copy.
        const synAcks = legs.toClient.filter((p) => p.line.includes('Flags [S.]'));
        assert.equal(synAcks.length, 2, 'one SYN-ACK per family');
        for (const p of synAcks) assert.equal(p.dscp, 0, p.line);
        assertAll(legs.toClient.filter(carriesData), `${engine}: proxy -> client`, { dscp: 34, ttl: 64 }, [4, 6], engine === 'splice' ? 2 : 1);
      }
    } finally {
      await lab.run('client', ['nft', 'delete', 'table', 'inet', 'client_marks']);
    }
  });
});

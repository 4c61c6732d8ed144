// The TCP relay through real kernel rules: transparent mode, IPv4 and IPv6, stream semantics.
// The same cases run against every engine (relay.root.test.ts: splice, relay-stream: stream,
// relay-uring: uring).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { normalizeAddress } from '../../../src/core/net/sockaddr.js';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { TCP_PEER } from '../../helpers/paths.js';
import { startProxyLab, type ProxyLab } from '../../helpers/proxy-lab.js';

const SERVER = { 4: LAB_ADDRESSES.server.ipv4, 6: LAB_ADDRESSES.server.ipv6 } as const;
const CLIENT = { 4: LAB_ADDRESSES.client.ipv4, 6: LAB_ADDRESSES.client.ipv6 } as const;
const MiB = 1024 * 1024;

export function relayCases(engine: 'splice' | 'stream' | 'uring'): void {
  describe(`TCP relay (${engine} engine), transparent upstream (root)`, () => {
    let p: ProxyLab;
    before(async () => {
      p = await startProxyLab(['--intercept', 'tcp:81,82', '--upstream', 'transparent', '--workers', '2', '--tcp-engine', engine, '--table', 'tproxy_tcp']);
    });
    after(() => p.lab.destroy());

    if (engine === 'uring') {
      it('runs the uring engine, not the splice fallback, and says so', async () => {
        const line = await p.logs.waitFor((l) => l.type === 'tcp.engine', 5000, 'the engine line');
        assert.equal(line.engine, 'uring', String(line.why));
      });
    }

    for (const family of [4, 6] as const) {
      it(`IPv${family}: the server sees the client's address and port`, async () => {
        const r = await p.client<{ how: string; local: { address: string; port: number }; seen: { address: string; port: number } }>('peer', SERVER[family], 81);
        assert.equal(r.how, 'end');
        assert.equal(normalizeAddress(r.seen.address), CLIENT[family]);
        assert.equal(r.seen.port, r.local.port, 'same source port');
        await p.logs.waitFor((l) => l.type === 'tcp.accept' && (l.client as { port: number }).port === r.local.port, 5000, 'the proxy logging the flow');
      });

      it(`IPv${family}: 64 MiB each way arrive intact`, async () => {
        const r = await p.client<{ how: string; receivedBytes: number; sentSha256: string; receivedSha256: string }>('bulk', SERVER[family], 81, 64 * MiB);
        assert.equal(r.how, 'end');
        assert.equal(r.receivedBytes, 64 * MiB);
        assert.equal(r.receivedSha256, r.sentSha256);
      });
    }

    it("the client's port taken on the proxy host: the server sees the client's address from a port the kernel picked", async () => {
      const port = 40_000 + Math.floor(Math.random() * 10_000);
      const holder = p.lab.spawn('router', [process.execPath, TCP_PEER, 'hold-port', CLIENT[4], `${port}`]);
      try {
        await new JsonLines<{ event: string }>(holder.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'the port held on the router');
        const r = await p.client<{ how: string; local: { address: string; port: number }; seen: { address: string; port: number } }>('peer-from', SERVER[4], 81, port);
        assert.equal(r.how, 'end');
        assert.equal(r.local.port, port);
        assert.equal(normalizeAddress(r.seen.address), CLIENT[4]);
        assert.notEqual(r.seen.port, port, 'the held port cannot be the source');
      } finally {
        holder.child.kill('SIGTERM');
        await holder.exited;
      }
    });

    it('half-close: the client FINs first and still receives everything the server sends after', async () => {
      const r = await p.client<{ how: string; receivedBytes: number; intact: boolean }>('halfclose', SERVER[4], 81, 4 * MiB);
      assert.deepEqual(r, { how: 'end', receivedBytes: 4 * MiB, intact: true });
    });

    it('a reset from the server reaches the client as a reset', async () => {
      assert.equal((await p.client<{ how: string }>('reset', SERVER[6], 81)).how, 'reset');
    });

    it('a reset from the client reaches the server as a reset', async () => {
      const r = await p.client<{ local: { port: number } }>('hold-reset', SERVER[4], 81);
      const closed = await p.serverLog.waitFor((l) => l.event === 'closed' && l.peer?.port === r.local.port, 5000, 'the server seeing the connection end');
      assert.equal(closed.how, 'reset');
    });

    it('a closed port upstream gives the client a reset, not a silent close, and is counted', async () => {
      assert.equal((await p.client<{ how: string }>('raw', SERVER[4], 82)).how, 'reset');
      await p.logs.waitFor((l) => l.type === 'tcp.close' && l.reason === 'ECONNREFUSED', 5000, 'the refused connect logged');
    });

    it('relays 1,000 concurrent connections', async () => {
      const r = await p.client<{ opened: number; echoed: number; openAtOnce: number; failures: string[] }>('many', SERVER[4], 81, 1000);
      assert.deepEqual(r.failures, []);
      assert.equal(r.echoed, 1000);
      assert.equal(r.openAtOnce, 1000);
    });

    it('refuses a connection made straight to the listener (not through TPROXY)', async () => {
      assert.equal((await p.client<{ how: string }>('raw', LAB_ADDRESSES.routerClientSide.ipv4, 8000)).how, 'reset');
      await p.logs.waitFor((l) => l.type === 'tcp.refused' && l.reason === 'not-intercepted', 5000, 'the refusal logged');
    });
  });
}

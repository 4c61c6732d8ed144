// The demo as a library: other upstream mode, and the failures it must detect and report.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTproxyError } from '../../src/core/errors.js';
import { runDemo, type DemoOptions } from '../../src/demo/run-demo.js';
import { LAB_ADDRESSES, namespacesWithPrefix } from '../../src/lab/topology.js';
import { isAlive } from '../helpers/paths.js';

function options(change: Partial<DemoOptions> = {}): DemoOptions & { lines: string[]; prefix: () => string } {
  const lines: string[] = [];
  let prefix = '';
  return {
    upstream: 'direct',
    listenPort: 8000,
    families: [4, 6],
    transports: ['tcp', 'udp'],
    report: (line) => lines.push(line),
    onLab: (lab) => (prefix = lab.prefix),
    ...change,
    lines,
    prefix: () => prefix,
  };
}

describe('demo scenarios (root)', () => {
  it('relays in direct mode: the server sees the router, the client sees the server', async () => {
    const o = options({ upstream: 'direct' });
    const result = await runDemo(o);
    assert.equal(result.flows.length, 4);
    for (const flow of result.flows) {
      const router = flow.family === 4 ? LAB_ADDRESSES.routerServerSide.ipv4 : LAB_ADDRESSES.routerServerSide.ipv6;
      const server = flow.family === 4 ? LAB_ADDRESSES.server.ipv4 : LAB_ADDRESSES.server.ipv6;
      assert.equal(flow.serverSaw.address, router, `${flow.transport}/ipv${flow.family}`);
      assert.deepEqual(flow.originalDestination, { family: flow.family, address: server, port: 80 });
      assert.equal(flow.replyFrom.port, 80);
      assert.ok((flow.bytesFromClient ?? 0) > 0 && (flow.bytesFromServer ?? 0) > 0, 'bytes relayed both ways');
    }
    assert.deepEqual(await namespacesWithPrefix(result.prefix), []);
    assert.equal(isAlive(result.pids.proxy), false);
    assert.equal(isAlive(result.pids.server), false);
  });

  it('fails with ERR_PROXY_BYPASSED when the tproxy rules are missing and traffic goes around the proxy', async () => {
    const o = options({
      families: [4],
      transformPlan: (plan) => ({
        ...plan,
        table: { ...plan.table, chains: plan.table.chains.map((c) => ({ ...c, rules: c.rules.filter((r) => r.role !== 'tproxy' && r.role !== 'fail-closed') })) },
      }),
    });
    await assert.rejects(runDemo(o), (e: unknown) => isTproxyError(e, 'ERR_PROXY_BYPASSED') && /tcp\/ipv4: the client got a reply but the proxy never saw the flow/.test(e.message));
    assert.ok(o.prefix(), 'the lab was built');
    assert.deepEqual(await namespacesWithPrefix(o.prefix()), [], 'nothing left behind after a failure');
  });

  it('fails with a clear reason when the proxy port is already in use', async () => {
    const o = options({ families: [4], transports: ['tcp'], occupyListenPort: true });
    await assert.rejects(runDemo(o), (e: unknown) => isTproxyError(e, 'ERR_ADDRESS_IN_USE') && /the proxy could not start in the router namespace: bind\(0\.0\.0\.0:8000\) failed with EADDRINUSE: the address and port are already in use/.test(e.message));
    assert.deepEqual(await namespacesWithPrefix(o.prefix()), []);
  });
});

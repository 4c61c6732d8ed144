// The TCP idle timeout, on its own proxy: a short timeout would cut the other tests' waiting flows.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { startProxyLab, type ProxyLab } from '../../helpers/proxy-lab.js';

for (const engine of ['splice', 'stream', 'uring'] as const) {
  describe(`TCP idle timeout, ${engine} engine (root)`, () => {
    let p: ProxyLab;
    before(async () => {
      p = await startProxyLab(['--intercept', 'tcp:81', '--workers', '1', '--tcp-engine', engine, '--idle-timeout-ms', '1000', '--table', 'tproxy_idle']);
    });
    after(() => p.lab.destroy());

    it('closes an idle flow with a reset both ways', async () => {
      const r = await p.client<{ how: string; reply: string }>('hold', LAB_ADDRESSES.server.ipv6, 81, 20_000);
      assert.equal(r.reply, 'OK\n');
      assert.equal(r.how, 'reset', 'the client sees a reset');
      const closed = await p.serverLog.waitFor((l) => l.event === 'closed', 5000, 'the server seeing the flow end');
      assert.equal(closed.how, 'reset', 'the server sees a reset');
      await p.logs.waitFor((l) => l.type === 'tcp.close' && l.reason === 'idle-timeout', 5000, 'idle timeout logged');
    });
  });
}

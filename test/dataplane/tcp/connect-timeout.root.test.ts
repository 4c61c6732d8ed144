// The upstream connect timeout: the server's namespace drops SYNs to one port, so connects hang.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { startProxyLab, type ProxyLab } from '../../helpers/proxy-lab.js';

for (const engine of ['splice', 'stream', 'uring'] as const) {
  describe(`TCP connect timeout, ${engine} engine (root)`, () => {
    let p: ProxyLab;
    before(async () => {
      p = await startProxyLab(['--intercept', 'tcp:81,84', '--workers', '1', '--tcp-engine', engine, '--connect-timeout-ms', '700', '--table', 'tproxy_connect']);
      await p.lab.run('server', ['nft', '-f', '-'], { input: ['table inet blackhole {', '  chain input {', '    type filter hook input priority 0;', '    tcp dport 84 drop', '  }', '}', ''].join('\n') });
    });
    after(() => p.lab.destroy());

    it('resets the client when the upstream never answers, and counts it', async () => {
      const r = await p.client<{ how: string }>('raw', LAB_ADDRESSES.server.ipv4, 84);
      assert.equal(r.how, 'reset');
      await p.logs.waitFor((l) => l.type === 'tcp.close' && l.reason === 'connect-timeout', 5000, 'the connect timeout logged');
      const ok = await p.client<{ how: string }>('peer', LAB_ADDRESSES.server.ipv4, 81);
      assert.equal(ok.how, 'end', 'other flows are unaffected');
    });
  });
}

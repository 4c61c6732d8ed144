// Closing a flow through the dashboard's API resets both peers, with both TCP engines, in a worker
// process (flow keyed by the worker's pid) and in the daemon's own process (tcp.workers 0).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { startProxyLab, type ProxyLab } from '../../helpers/proxy-lab.js';
import { until } from '../../helpers/until.js';

const TOKEN = 'close-flow-test-token-42';

for (const [engine, workers, port] of [
  ['splice', 0, 9472],
  ['stream', 1, 9473],
] as const) {
  describe(`dashboard closes a TCP flow, ${engine} engine, ${workers} workers (root)`, () => {
    let p: ProxyLab;
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tproxy-close-flow-'));
      const config = join(dir, 'tproxy.yaml');
      writeFileSync(
        config,
        `listeners:\n  - { name: main, port: 8100, intercept: [tcp:81] }\nrules: { table: tproxy_close_${engine} }\ntcp: { workers: ${workers}, engine: ${engine} }\nmetrics: { listen: "127.0.0.1:${port}" }\ndashboard: { enabled: true, token: ${TOKEN} }\n`,
      );
      p = await startProxyLab(['--config', config]);
    });
    after(async () => {
      await p?.lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    const api = async (args: readonly string[]): Promise<{ status: number; body: string }> => {
      const out = await p.lab.run('router', ['curl', '-s', '-o', '-', '-w', '\\n%{http_code}', ...args], { check: false });
      const lines = out.stdout.split('\n');
      return { status: Number(lines.pop()), body: lines.join('\n') };
    };

    it('resets both peers and logs the flow closed-by-operator', async () => {
      const held = p.client<{ how: string; reply: string }>('hold', LAB_ADDRESSES.server.ipv4, 81, 60_000);
      const flows = await until(
        async () => JSON.parse((await api([`http://127.0.0.1:${port}/api/flows`])).body) as { key: string; originalDestination: string }[],
        (list) => list.some((f) => f.originalDestination === `${LAB_ADDRESSES.server.ipv4}:81`),
        20_000,
        'the held flow in the table',
      );
      const key = flows.find((f) => f.originalDestination === `${LAB_ADDRESSES.server.ipv4}:81`)?.key ?? '';
      assert.match(key, workers === 0 ? /^tcp\/main\/0\/\d+$/ : /^tcp\/main\/[1-9]\d*\/\d+$/);
      const close = ['-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify({ key }), `http://127.0.0.1:${port}/api/flows/close`];
      assert.equal((await api(close)).status, 401, 'no token, no close');
      const done = await api(['-H', `x-tproxy-token: ${TOKEN}`, ...close]);
      assert.equal(done.status, 200, done.body);
      const r = await held;
      assert.equal(r.reply, 'OK\n');
      assert.equal(r.how, 'reset', 'the client sees a reset');
      const closed = await p.serverLog.waitFor((l) => l.event === 'closed', 10_000, 'the server seeing the flow end');
      assert.equal(closed.how, 'reset', 'the server sees a reset');
      await p.logs.waitFor((l) => l.type === 'tcp.close' && l.reason === 'closed-by-operator', 10_000, 'closed-by-operator logged');
      assert.equal((await api(['-H', `x-tproxy-token: ${TOKEN}`, ...close])).status, 404, 'a second close finds nothing');
    });
  });
}

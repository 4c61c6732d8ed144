// Readiness of a real daemon in a lab namespace, as a routing daemon's health check and scripts
// see it: /readyz and `tproxy status --ready` follow the kernel rules (removed behind the daemon's
// back) and `tproxy drain` / `undrain`; drained, the listener still serves.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A } from '../../src/lab/topology.js';
import { startAdminProxyLab, type AdminProxyLab } from '../helpers/proxy-lab.js';
import { runTproxy, type TproxyProcessResult } from '../helpers/tproxy-process.js';
import { until } from '../helpers/until.js';

const METRICS = '127.0.0.1:9465';

describe('readiness of a running daemon (root)', () => {
  let p: AdminProxyLab;
  let socket: string;
  before(async () => {
    p = await startAdminProxyLab('ready', ['--intercept', 'tcp:81', '--workers', '2', '--table', 'tproxy_ready', '--route-table', '132', '--rule-priority', '9132', '--metrics-address', METRICS], { echo: true });
    socket = p.socket;
  });
  after(() => p?.close());

  /** GET a path of the metrics endpoint from inside the router namespace. */
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const script = `fetch('http://${METRICS}${path}').then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))`;
    return JSON.parse((await p.lab.run('router', [process.execPath, '-e', script])).stdout) as { status: number; body: string };
  };
  const ready = (): Promise<TproxyProcessResult> => runTproxy(['status', '--ready', '--socket', socket]);
  const flow = async (): Promise<number> => (await p.client<{ receivedBytes: number }>('bulk', A.server.ipv4, 81, 10_000)).receivedBytes;

  it('is ready once started, and alive', async () => {
    assert.deepEqual(await get('/readyz'), { status: 200, body: 'ready\n' });
    assert.deepEqual(await get('/healthz'), { status: 200, body: 'ok\n' });
    assert.deepEqual(await ready(), { code: 0, stdout: 'ready\n', stderr: '' });
  });

  it('is not ready while drained, serves new flows meanwhile, and is ready again after undrain', async () => {
    const drained = await runTproxy(['drain', '--socket', socket]);
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /drained on purpose/);
    const r = await ready();
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^not ready\n- drained on purpose/);
    const page = await get('/readyz');
    assert.equal(page.status, 503);
    assert.match(page.body, /drained on purpose/);
    assert.equal(await flow(), 10_000, 'a drained gateway still serves the flows that reach it');
    assert.equal((await runTproxy(['undrain', '--socket', socket])).code, 0);
    assert.equal((await ready()).code, 0);
  });

  it('is not ready when its rules are removed behind its back, with the reason (health.rulesCheckMs: 2 s)', async () => {
    await p.lab.run('router', ['nft', 'delete', 'table', 'inet', 'tproxy_ready']);
    const page = await until(() => get('/readyz'), (x) => x.status === 503, 10_000, '/readyz after the table went');
    assert.match(page.body, /the kernel rules are not as applied \(nft\): .*missing/);
    const r = await ready();
    assert.equal(r.code, 1);
    assert.equal((await get('/healthz')).status, 200, 'alive all the same: restarting it is not the fix');
  });

  it('exits 2 when there is nobody to ask', async () => {
    const r = await runTproxy(['status', '--ready', '--socket', join(dirname(socket), 'nobody.sock')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot ask the daemon/);
  });
});

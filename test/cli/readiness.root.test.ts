// Readiness of a real daemon in a lab namespace, as a routing daemon's health check and scripts
// see it: /readyz and `tproxy status --ready` follow the kernel rules (removed behind the daemon's
// back) and `tproxy drain` / `undrain`; drained, the listener still serves.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A } from '../../src/lab/topology.js';
import { startEchoServer } from '../helpers/lab-flows.js';
import { BIN } from '../helpers/paths.js';
import { startProxyLab, type ProxyLab } from '../helpers/proxy-lab.js';
import { until } from '../helpers/until.js';

const METRICS = '127.0.0.1:9465';

function cli(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('readiness of a running daemon (root)', () => {
  let p: ProxyLab;
  let dir: string;
  let socket: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-ready-'));
    socket = join(dir, 'admin.sock');
    p = await startProxyLab(['--intercept', 'tcp:81', '--workers', '2', '--table', 'tproxy_ready', '--route-table', '132', '--rule-priority', '9132', '--metrics-address', METRICS, '--admin-socket', socket]);
    await startEchoServer(p.lab);
  });
  after(async () => {
    await p.lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** GET a path of the metrics endpoint from inside the router namespace. */
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const script = `fetch('http://${METRICS}${path}').then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))`;
    return JSON.parse((await p.lab.run('router', [process.execPath, '-e', script])).stdout) as { status: number; body: string };
  };
  const ready = (): Promise<{ code: number; stdout: string; stderr: string }> => cli(['status', '--ready', '--socket', socket]);
  const flow = async (): Promise<number> => (await p.client<{ receivedBytes: number }>('bulk', A.server.ipv4, 81, 10_000)).receivedBytes;

  it('is ready once started, and alive', async () => {
    assert.deepEqual(await get('/readyz'), { status: 200, body: 'ready\n' });
    assert.deepEqual(await get('/healthz'), { status: 200, body: 'ok\n' });
    assert.deepEqual(await ready(), { code: 0, stdout: 'ready\n', stderr: '' });
  });

  it('is not ready while drained, serves new flows meanwhile, and is ready again after undrain', async () => {
    const drained = await cli(['drain', '--socket', socket]);
    assert.equal(drained.code, 0, drained.stderr);
    assert.match(drained.stdout, /drained on purpose/);
    const r = await ready();
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^not ready\n- drained on purpose/);
    const page = await get('/readyz');
    assert.equal(page.status, 503);
    assert.match(page.body, /drained on purpose/);
    assert.equal(await flow(), 10_000, 'a drained gateway still serves the flows that reach it');
    assert.equal((await cli(['undrain', '--socket', socket])).code, 0);
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
    const r = await cli(['status', '--ready', '--socket', join(dir, 'nobody.sock')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot ask the daemon/);
  });
});

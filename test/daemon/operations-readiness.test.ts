// Readiness as operators reach it: /healthz and /readyz on the metrics endpoint, `ready`, `drain`
// and `undrain` on the admin socket, with fake listeners and rules (real HTTP and unix sockets).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/core/config/document.js';
import type { TproxyConfig } from '../../src/core/config/tproxy-config.js';
import type { RulesStatus } from '../../src/control/apply.js';
import { fetchReadiness, Operations, requestDrain, type OperatedListener, type OperationsSource } from '../../src/daemon/operations.js';
import type { ProxyHealth } from '../../src/dataplane/proxy.js';
import { emptyTcpCounters } from '../../src/dataplane/tcp/counters.js';
import type { RulesPlan } from '../../src/core/rules/planned.js';

interface Fake {
  source: OperationsSource;
  health: { current: ProxyHealth };
  rules: { current: RulesStatus; reads: number };
  config: { current: TproxyConfig };
}

function fake(configText: string): Fake {
  const health = { current: { tcp: { accepting: true, workers: { running: 1, wanted: 1 } } } as ProxyHealth };
  const rules = { current: { backend: 'nft', pieces: [], unexpected: [], inPlace: true } as RulesStatus, reads: 0 };
  const config = { current: loadConfig({ file: 'test.yaml', text: configText }) };
  const listener: OperatedListener = {
    name: 'web',
    proxy: {
      snapshot: () => Promise.resolve({ counters: { tcp: emptyTcpCounters() }, flows: [] }),
      workers: () => ({ running: 1, restarts: 0 }),
      workerPids: () => [1],
      tcpCapacity: () => ({ configured: 1, perWorker: 1, limitedBy: 'configured', fileLimit: 1024, descriptorsPerFlow: 2, sharedPipes: 2, neededFileLimit: 70 }),
      health: () => health.current,
    },
  };
  const source: OperationsSource = {
    listeners: () => [listener],
    rules: () => ({
      plan: {} as RulesPlan,
      backend: 'nft',
      controller: {
        status: () => {
          rules.reads++;
          return Promise.resolve(rules.current);
        },
      },
    }),
    config: () => config.current,
  };
  return { source, health, rules, config };
}

const WEB = 'listeners:\n  - { name: web, port: 8100, intercept: [tcp:80] }\n';

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

describe('operations readiness', () => {
  it('answers /healthz always and /readyz with 200 or 503 and the reasons', async (t) => {
    const f = fake(`${WEB}health: { rulesCheckMs: 0 }\n`);
    const ops = new Operations({ log: () => undefined, version: '0.0.0', engine: 'splice', metricsAddress: { host: '127.0.0.1', port: 0 } });
    await ops.start(f.source);
    t.after(() => ops.close());
    const base = `http://127.0.0.1:${(ops as unknown as { metrics: { address: { port: number } } }).metrics.address.port}`;
    assert.deepEqual(await get(`${base}/readyz`), { status: 503, body: 'not ready\n- the daemon is starting\n' });
    assert.deepEqual(await get(`${base}/healthz`), { status: 200, body: 'ok\n' });
    ops.running();
    assert.deepEqual(await get(`${base}/readyz`), { status: 200, body: 'ready\n' });
    f.rules.current = { backend: 'nft', pieces: [{ kind: 'rule', name: 'tproxy web', state: 'missing' }], unexpected: [], inPlace: false };
    const missing = await get(`${base}/readyz`);
    assert.equal(missing.status, 503);
    assert.match(missing.body, /kernel rules are not as applied \(nft\): tproxy web missing/);
    f.rules.current = { ...f.rules.current, pieces: [], inPlace: true };
    f.health.current = { tcp: { accepting: false, workers: { running: 0, wanted: 1 } } };
    assert.match((await get(`${base}/readyz`)).body, /listener web: 0 of 1 TCP worker processes run/);
    assert.equal((await get(`${base}/healthz`)).status, 200, 'a gateway that is not ready is still alive');
    assert.equal((await get(`${base}/metrics`)).status, 200);
    assert.match((await get(`${base}/nothing`)).body, /readiness at \/readyz/);
  });

  it('reads the kernel rules at most once per health.rulesCheckMs', async () => {
    const f = fake(`${WEB}health: { rulesCheckMs: 2000 }\n`);
    let now = 0;
    const ops = new Operations({ log: () => undefined, version: '0.0.0', engine: 'splice', now: () => now });
    await ops.start(f.source);
    ops.running();
    await Promise.all([ops.readiness(), ops.readiness(), ops.readiness()]);
    now = 1999;
    assert.equal((await ops.readiness()).ready, true);
    assert.equal(f.rules.reads, 1);
    f.rules.current = { backend: 'nft', pieces: [], unexpected: ['chain "x"'], inPlace: false };
    now = 2000;
    assert.equal((await ops.readiness()).ready, false, 'a read after rulesCheckMs sees the change');
    assert.equal(f.rules.reads, 2);
  });

  it('checks the upstream proxies only when asked to, once per interval', async () => {
    const probes: string[] = [];
    const f = fake(`${WEB}outbounds: [{ name: corp, kind: socks5, url: "socks5://192.0.2.7:1080" }]\nhealth: { rulesCheckMs: 1000, upstreamTimeoutMs: 250 }\n`);
    let reachable = false;
    let now = 0;
    const ops = new Operations({ log: () => undefined, version: '0.0.0', engine: 'splice', now: () => now, probeUpstream: (e, timeoutMs) => (probes.push(`${e.address}:${e.port} ${timeoutMs}`), Promise.resolve(reachable ? { reachable } : { reachable, error: 'ETIMEDOUT' })) });
    await ops.start(f.source);
    ops.running();
    assert.equal((await ops.readiness()).ready, true, 'off by default');
    assert.deepEqual(probes, []);
    f.config.current = loadConfig({ file: 'test.yaml', text: `${WEB}outbounds: [{ name: corp, kind: socks5, url: "socks5://192.0.2.7:1080" }]\nhealth: { rulesCheckMs: 1000, upstreamTimeoutMs: 250, checkUpstreams: true }\n` });
    now = 1000;
    assert.deepEqual((await ops.readiness()).reasons, ['outbound corp: upstream proxy 192.0.2.7:1080 not reachable (ETIMEDOUT)']);
    reachable = true;
    now = 1500;
    assert.equal((await ops.readiness()).ready, false, 'the last probe serves until the interval ends');
    now = 2000;
    assert.equal((await ops.readiness()).ready, true);
    assert.deepEqual(probes, ['192.0.2.7:1080 250', '192.0.2.7:1080 250']);
  });

  it('drains and undrains through the admin socket: not ready meanwhile, with the reason', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tproxy-ready-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const socket = path.join(dir, 'admin.sock');
    const logged: string[] = [];
    const f = fake(WEB);
    const ops = new Operations({ log: (e) => logged.push(e.type), version: '0.0.0', engine: 'splice', adminSocket: socket });
    await ops.start(f.source);
    t.after(() => ops.close());
    ops.running();
    assert.deepEqual(await fetchReadiness(socket), { ready: true, drained: false, reasons: [] });
    const drained = await requestDrain(socket, true);
    assert.deepEqual([drained.ready, drained.drained], [false, true]);
    assert.match(drained.reasons.join('\n'), /drained on purpose/);
    assert.equal((await requestDrain(socket, true)).drained, true, 'draining twice is no error');
    assert.equal((await fetchReadiness(socket)).ready, false);
    assert.deepEqual(await requestDrain(socket, false), { ready: true, drained: false, reasons: [] });
    assert.deepEqual(logged.filter((e) => e.endsWith('drained')), ['drained', 'undrained']);
  });
});

// The daemon's reload logic with fake proxies and a fake rules controller: what starts, stops and is
// applied, in which order, and what stays when something fails.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/core/config/document.js';
import type { TproxyConfig } from '../../src/core/config/tproxy-config.js';
import { TproxyError } from '../../src/core/errors.js';
import type { RulesPlan } from '../../src/core/rules/planned.js';
import { Daemon, type DaemonEvent, type ListenerProxy } from '../../src/daemon/daemon.js';
import { Operations } from '../../src/daemon/operations.js';
import { emptyTcpCounters } from '../../src/dataplane/tcp/counters.js';
import type { ProxyConfig } from '../../src/dataplane/proxy.js';

const config = (text: string): TproxyConfig => loadConfig({ file: 'test.yaml', text });
const prerouting = (plan: RulesPlan | undefined) => plan?.table.chains.find((c) => c.name === 'prerouting')?.rules ?? [];
const diverts = (plan: RulesPlan | undefined): string[] => prerouting(plan).filter((r) => r.role === 'divert').map((r) => r.comment);
const tproxyPorts = (plan: RulesPlan | undefined): number[] => prerouting(plan).flatMap((r) => r.statements.flatMap((s) => (s.type === 'tproxy' ? [s.port] : [])));
const upstreamReturns = (plan: RulesPlan | undefined): string[] => prerouting(plan).flatMap((r) => r.matches.flatMap((m) => (r.role === 'upstream-return' && m.type === 'mark' ? [`mark 0x${m.mark.value.toString(16)}`] : [])));
/** Resolves once the re-plan a finished drain queued has run (with fakes it only waits for promises). */
const settled = (): Promise<void> => new Promise((r) => setImmediate(r));
const WEB = '  - { name: web, port: 8100, intercept: [tcp:80] }\n';
const DNS = '  - { name: dns, port: 8153, intercept: [udp:53] }\n';

interface Harness {
  daemon: Daemon;
  log: string[];
  events: DaemonEvent[];
  /** Make the next start of this port fail with this error. */
  failStart: Map<number, TproxyError[]>;
  failApply: TproxyError[];
  /** Make the next routing swap of this port fail with this error. */
  failRouting: Map<number, TproxyError[]>;
  /** Every plan applied, in order. */
  plans: RulesPlan[];
  /** Resolve the drain of the proxy on this port (its flows finished). */
  finishDrain(port: number): void;
}

function harness(initial: TproxyConfig): Harness {
  const log: string[] = [];
  const events: DaemonEvent[] = [];
  const failStart = new Map<number, TproxyError[]>();
  const failApply: TproxyError[] = [];
  const failRouting = new Map<number, TproxyError[]>();
  const plans: RulesPlan[] = [];
  const drains = new Map<number, () => void>();
  let ids = 0;
  const createProxy = (c: ProxyConfig): ListenerProxy => {
    const id = `${c.port}#${++ids}`;
    let draining: Promise<{ completed: number; forced: number }> | undefined;
    return {
      start() {
        const error = failStart.get(c.port)?.shift();
        log.push(`start ${id}${error ? ` fails ${error.code}` : ''}`);
        return error ? Promise.reject(error) : Promise.resolve([]);
      },
      stop(graceMs = 0) {
        log.push(`stop ${id} grace ${graceMs}`);
        if (graceMs === 0) {
          drains.get(c.port)?.();
          return draining ?? Promise.resolve({ completed: 0, forced: 0 });
        }
        draining ??= new Promise((resolve) => drains.set(c.port, () => resolve({ completed: 1, forced: 0 })));
        return draining;
      },
      counters: () => ({ tcp: emptyTcpCounters() }),
      snapshot: () => Promise.resolve({ counters: { tcp: emptyTcpCounters() }, flows: [] }),
      workers: () => ({ running: 0, restarts: 0 }),
      workerPids: () => [],
      health: () => ({ tcp: { accepting: true, workers: { running: 0, wanted: 0 } } }),
      tcpCapacity: () => ({ configured: 1, perWorker: 1, limitedBy: 'configured', fileLimit: 1024, descriptorsPerFlow: 2, sharedPipes: 2, neededFileLimit: 70 }),
      setFlowEvents(on) {
        log.push(`flow events ${id} ${on ? 'on' : 'off'}`);
        return Promise.resolve();
      },
      setRouting(settings) {
        const error = failRouting.get(c.port)?.shift();
        log.push(`routing ${id} default ${settings.routing?.defaultOutbound.name ?? settings.upstream}${error ? ` fails ${error.code}` : ''}`);
        return error ? Promise.reject(error) : Promise.resolve();
      },
      closeTcpFlow: () => Promise.resolve(false),
      udpSessions: () => Promise.resolve([]),
      closeUdpSession: () => Promise.resolve(false),
    };
  };
  const controller = {
    apply(plan: RulesPlan, options?: { owner?: number }) {
      const error = failApply.shift();
      if (!error) plans.push(plan);
      log.push(`apply ${plan.config.listeners.map((l) => `${l.name}:${l.port}`).join(',')} owner ${options?.owner ?? '-'}${error ? ' fails' : ''}`);
      return error ? Promise.reject(error) : Promise.resolve({ changed: true, warnings: [] });
    },
    remove(plan: RulesPlan) {
      log.push(`remove ${plan.table.name}`);
      return Promise.resolve({ table: true, rules: 2, routes: 2 });
    },
    status: () => Promise.resolve({ backend: 'nft' as const, pieces: [], unexpected: [], inPlace: true }),
  };
  const daemon = new Daemon(initial, {
    emit: (e) => events.push(e),
    createProxy,
    rules: () => ({ backend: 'nft', controller }),
    cores: 2,
    pid: 4242,
    sleep: () => Promise.resolve(),
  });
  return { daemon, log, events, failStart, failApply, failRouting, plans, finishDrain: (port) => drains.get(port)?.() };
}

describe('daemon', () => {
  it('starts every listener before the rules point at them', async () => {
    const h = harness(config(`listeners:\n${WEB}${DNS}`));
    await h.daemon.start();
    assert.deepEqual(h.log, ['start 8100#1', 'start 8153#2', 'apply web:8100,dns:8153 owner 4242']);
    // tcp.workers auto on 2 cores: one per core but one.
    assert.deepEqual(h.daemon.listeners().map((l) => [l.name, l.config.tcpWorkers]), [['web', 1], ['dns', 1]]);
  });

  it('undoes a failed start: listeners stopped, no rules', async () => {
    const h = harness(config(`listeners:\n${WEB}${DNS}`));
    h.failStart.set(8153, [new TproxyError('ERR_ADDRESS_IN_USE', 'port 8153 is taken')]);
    await assert.rejects(h.daemon.start(), /port 8153 is taken/);
    assert.deepEqual(h.log, ['start 8100#1', 'start 8153#2 fails ERR_ADDRESS_IN_USE', 'stop 8100#1 grace 0']);
  });

  it('reload: keeps unchanged listeners, starts added ones before the rules, drains removed ones after', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    await h.daemon.start();
    const web = h.daemon.listeners()[0]?.proxy;
    h.log.length = 0;
    const report = await h.daemon.reload(config(`listeners:\n${WEB}${DNS}`));
    assert.deepEqual([report.kept, report.added, report.removed, report.changed, report.rulesChanged], [['web'], ['dns'], [], [], true]);
    assert.equal(h.daemon.listeners()[0]?.proxy, web, 'the unchanged listener is the same proxy');
    assert.deepEqual(h.log, ['start 8153#2', 'apply web:8100,dns:8153 owner 4242']);

    h.log.length = 0;
    await h.daemon.reload(config(`listeners:\n${DNS}reload: { drainMs: 30000 }\n`));
    assert.deepEqual(h.log, ['apply dns:8153 owner 4242', 'stop 8100#1 grace 30000']);
    assert.deepEqual(h.daemon.listeners().map((l) => l.name), ['dns']);
    h.finishDrain(8100);
    await new Promise((r) => setImmediate(r));
    assert.ok(h.events.some((e) => e.type === 'listener.stopped' && e.listener === 'web'));

    h.log.length = 0;
    const same = await h.daemon.reload(config(`listeners:\n${DNS}reload: { drainMs: 30000 }\n`));
    assert.deepEqual([same.kept, same.rulesChanged, h.log], [['dns'], false, []]);
  });

  it('reload: a changed listener drains and is started again on its port, retrying while the port is held', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    await h.daemon.start();
    h.log.length = 0;
    h.failStart.set(8100, [new TproxyError('ERR_ADDRESS_IN_USE', 'still held')]);
    const report = await h.daemon.reload(config(`listeners:\n  - { name: web, port: 8100, intercept: [tcp:80], idleTimeoutMs: 1000 }\n`));
    assert.deepEqual([report.changed, report.rulesChanged], [['web'], false], 'the rules do not depend on timeouts');
    assert.deepEqual(h.log, ['stop 8100#1 grace 600000', 'start 8100#2 fails ERR_ADDRESS_IN_USE', 'start 8100#3']);
    assert.equal(h.daemon.listeners()[0]?.config.tcpIdleTimeoutMs, 1000);
  });

  it('reload: log.level debug and back switches per-flow events on the running listeners, starting and stopping nothing', async () => {
    const h = harness(config(`listeners:\n${WEB}${DNS}`));
    await h.daemon.start();
    const proxies = h.daemon.listeners().map((l) => l.proxy);
    assert.deepEqual(h.daemon.listeners().map((l) => l.config.flowEvents), [false, false]);
    h.log.length = 0;

    const on = await h.daemon.reload(config(`listeners:\n${WEB}${DNS}log: { level: debug }\n`));
    assert.deepEqual([on.kept, on.added, on.removed, on.changed, on.flowEventsSwitched, on.rulesChanged], [['web', 'dns'], [], [], [], ['web', 'dns'], false]);
    assert.deepEqual(h.log, ['flow events 8100#1 on', 'flow events 8153#2 on'], 'no start, no stop, no rules: only the switch');
    assert.deepEqual(h.daemon.listeners().map((l) => l.proxy), proxies, 'the same proxies run');
    assert.deepEqual(h.daemon.listeners().map((l) => l.config.flowEvents), [true, true]);
    const applied = h.events.filter((e) => e.type === 'reload.applied').pop() as Record<string, unknown> | undefined;
    assert.deepEqual([applied?.kept, applied?.changed, applied?.flowEventsSwitched], [['web', 'dns'], [], ['web', 'dns']]);

    h.log.length = 0;
    const off = await h.daemon.reload(config(`listeners:\n${WEB}${DNS}log: { level: info }\n`));
    assert.deepEqual([off.kept, off.changed, off.flowEventsSwitched], [['web', 'dns'], [], ['web', 'dns']]);
    assert.deepEqual(h.log, ['flow events 8100#1 off', 'flow events 8153#2 off']);
    assert.deepEqual(h.daemon.listeners().map((l) => l.config.flowEvents), [false, false]);

    h.log.length = 0;
    const same = await h.daemon.reload(config(`listeners:\n${WEB}${DNS}log: { level: warn }\n`));
    assert.deepEqual([same.kept, same.flowEventsSwitched, h.log], [['web', 'dns'], undefined, []], 'info to warn: flow events stay off, nothing to switch');
    assert.equal(h.events.filter((e) => e.type === 'listener.draining').length, 0);
  });

  it('reload: changed routes are swapped on the running listeners, starting and stopping nothing', async () => {
    const h = harness(config(`listeners:\n${WEB}${DNS}`));
    await h.daemon.start();
    const proxies = h.daemon.listeners().map((l) => l.proxy);
    h.log.length = 0;
    const routed = config(`listeners:\n${WEB}${DNS}routes:\n  - { name: lab, outbound: transparent, destinations: [203.0.113.0/24], listeners: [web] }\n`);
    const report = await h.daemon.reload(routed);
    assert.deepEqual([report.kept, report.added, report.removed, report.changed, report.routingSwitched, report.rulesChanged], [['web', 'dns'], [], [], [], ['web'], false]);
    assert.deepEqual(h.log, ['routing 8100#1 default direct'], 'no start, no stop, no rules: only the swap, and only where the routes apply');
    assert.deepEqual(h.daemon.listeners().map((l) => l.proxy), proxies, 'the same proxies run');
    assert.deepEqual(h.daemon.listeners()[0]?.config.routing?.routes.map((r) => r.name), ['lab']);
    const applied = h.events.filter((e) => e.type === 'reload.applied').pop() as Record<string, unknown> | undefined;
    assert.deepEqual(applied?.routingSwitched, ['web']);

    // The listener's own outbound is routing too; with log.level, both are switched in place.
    h.log.length = 0;
    const both = await h.daemon.reload(config(`listeners:\n  - { name: web, port: 8100, intercept: [tcp:80], outbound: reject }\n${DNS}log: { level: debug }\n`));
    assert.deepEqual([both.kept, both.changed, both.flowEventsSwitched, both.routingSwitched], [['web', 'dns'], [], ['web', 'dns'], ['web']]);
    assert.deepEqual(h.log, ['routing 8100#1 default reject', 'flow events 8100#1 on', 'flow events 8153#2 on']);
    assert.deepEqual(h.daemon.listeners().map((l) => [l.config.routing?.defaultOutbound.name, l.config.routing?.routes.length, l.config.flowEvents]), [['reject', 0, true], ['direct', 0, true]]);
  });

  it('reload: routes swapped back when the rest of the reload fails, and a swap the data plane refuses changes nothing', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    await h.daemon.start();
    const before = h.daemon.config;
    h.log.length = 0;
    h.failApply.push(new TproxyError('ERR_CONFLICT', 'route table 100 is already used'));
    const rerouted = `listeners:\n  - { name: web, port: 8100, intercept: [tcp:80], outbound: transparent }\n`;
    await assert.rejects(h.daemon.reload(config(`${rerouted}${DNS}`)), /route table 100/);
    assert.deepEqual(h.log, ['routing 8100#1 default transparent', 'start 8153#2', 'apply web:8100,dns:8153 owner 4242 fails', 'stop 8153#2 grace 0', 'routing 8100#1 default direct']);
    assert.equal(h.daemon.config, before);
    assert.equal(h.daemon.listeners()[0]?.config.routing?.defaultOutbound.name, 'direct');

    h.log.length = 0;
    h.failRouting.set(8100, [new TproxyError('ERR_INVALID_ARGUMENT', 'the new routing was refused')]);
    await assert.rejects(h.daemon.reload(config(`${rerouted}${DNS}`)), /the new routing was refused/);
    assert.deepEqual(h.log, ['routing 8100#1 default transparent fails ERR_INVALID_ARGUMENT', 'routing 8100#1 default direct'], 'nothing started or applied');
    assert.equal(h.daemon.config, before);
  });

  it('reload: a listener whose port changes along with log.level is replaced, its new proxy started with flow events on', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    await h.daemon.start();
    h.log.length = 0;
    const report = await h.daemon.reload(config(`listeners:\n  - { name: web, port: 8200, intercept: [tcp:80] }\nlog: { level: debug }\n`));
    assert.deepEqual([report.kept, report.changed, report.flowEventsSwitched], [[], ['web'], undefined]);
    assert.deepEqual(h.log, ['stop 8100#1 grace 600000', 'start 8200#2', 'apply web:8200 owner 4242']);
    assert.deepEqual(h.daemon.listeners().map((l) => [l.config.port, l.config.flowEvents]), [[8200, true]]);
  });

  it('reload: when a new listener cannot start, the old configuration stays (nothing applied, replaced listeners restarted)', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    await h.daemon.start();
    const before = h.daemon.config;
    h.log.length = 0;
    h.failStart.set(8153, [new TproxyError('ERR_PRIVILEGE', 'no CAP_NET_ADMIN')]);
    await assert.rejects(h.daemon.reload(config(`listeners:\n  - { name: web, port: 8100, intercept: [tcp:80], maxConnections: 9 }\n${DNS}`)), /no CAP_NET_ADMIN/);
    assert.deepEqual(h.log, ['stop 8100#1 grace 600000', 'start 8100#2', 'start 8153#3 fails ERR_PRIVILEGE', 'stop 8100#2 grace 0', 'start 8100#4']);
    assert.equal(h.daemon.config, before);
    assert.deepEqual(h.daemon.listeners().map((l) => [l.name, l.config.maxConnections]), [['web', 100_000]]);
  });

  it('reload: when the rules cannot be applied, the listeners started for them stop again', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    await h.daemon.start();
    h.log.length = 0;
    h.failApply.push(new TproxyError('ERR_CONFLICT', 'route table 100 is already used'));
    await assert.rejects(h.daemon.reload(config(`listeners:\n${WEB}${DNS}`)), /route table 100/);
    assert.deepEqual(h.log, ['start 8153#2', 'apply web:8100,dns:8153 owner 4242 fails', 'stop 8153#2 grace 0']);
    assert.deepEqual(h.daemon.listeners().map((l) => l.name), ['web']);
  });

  it('reload: rules turned off are removed; another table replaces the old one', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    await h.daemon.start();
    h.log.length = 0;
    await h.daemon.reload(config(`listeners:\n${WEB}rules: { table: other }\n`));
    assert.deepEqual(h.log, ['remove tproxy_rules', 'apply web:8100 owner 4242']);
    h.log.length = 0;
    await h.daemon.reload(config(`listeners:\n${WEB}rules: { apply: false, table: other }\n`));
    assert.deepEqual(h.log, ['remove other']);
  });

  it('reload: a removed listener keeps the divert rule of its flows while it drains, then the rules are planned without it', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    await h.daemon.start();
    h.log.length = 0;
    await h.daemon.reload(config(`listeners:\n${DNS}reload: { drainMs: 30000 }\n`));
    assert.deepEqual(h.log, ['start 8153#2', 'apply dns:8153 owner 4242', 'stop 8100#1 grace 30000']);
    const during = h.plans.at(-1);
    assert.deepEqual([during?.config.draining?.map((l) => l.name), diverts(during)], [['web'], ['tproxy: divert udp ipv4', 'tproxy: divert tcp ipv4', 'tproxy: divert udp ipv6', 'tproxy: divert tcp ipv6']]);
    assert.ok(!tproxyPorts(during).includes(8100), 'the draining listener gets no new flows');
    assert.deepEqual(h.daemon.appliedRules()?.plan, during);

    h.log.length = 0;
    h.finishDrain(8100);
    await settled();
    assert.deepEqual(h.log, ['apply dns:8153 owner 4242']);
    const after = h.plans.at(-1);
    assert.deepEqual([after?.config.draining, diverts(after)], [undefined, ['tproxy: divert udp ipv4', 'tproxy: divert udp ipv6']]);
    assert.deepEqual(h.daemon.appliedRules()?.plan, after);
  });

  it('reload: the old version of a changed listener keeps its upstream mark while it drains', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    await h.daemon.start();
    await h.daemon.reload(config(`listeners:\n  - { name: web, port: 8100, intercept: [tcp:80], upstreamMark: 0x4 }\n`));
    assert.deepEqual(upstreamReturns(h.plans.at(-1)), ['mark 0x4', 'mark 0x2']);
    h.finishDrain(8100);
    await settled();
    assert.deepEqual(upstreamReturns(h.plans.at(-1)), ['mark 0x4']);
  });

  it('after a drain: rules that cannot be updated are an error event; nothing is applied once stopping', async () => {
    const h = harness(config(`listeners:\n${WEB}${DNS}`));
    await h.daemon.start();
    await h.daemon.reload(config(`listeners:\n${DNS}`));
    h.failApply.push(new TproxyError('ERR_COMMAND_FAILED', 'nft: busy'));
    h.finishDrain(8100);
    await settled();
    const error = h.events.find((e) => e.type === 'error');
    assert.deepEqual([error?.code, error?.message], ['ERR_COMMAND_FAILED', 'the rules kept for listener web while it drained could not be removed: nft: busy']);
    assert.deepEqual(h.daemon.appliedRules()?.plan.config.draining?.map((l) => l.name), ['web'], 'the rules in force are still those applied');

    const h2 = harness(config(`listeners:\n${WEB}${DNS}`));
    await h2.daemon.start();
    await h2.daemon.reload(config(`listeners:\n${DNS}`));
    h2.log.length = 0;
    await h2.daemon.stop(0);
    await settled();
    assert.deepEqual(h2.log, ['stop 8153#2 grace 0', 'stop 8100#1 grace 0', 'remove tproxy_rules']);
  });

  it('stop: listeners get the grace, draining ones too (the shorter wait wins), then the rules go', async () => {
    const h = harness(config(`listeners:\n${WEB}${DNS}`));
    await h.daemon.start();
    await h.daemon.reload(config(`listeners:\n${DNS}`));
    h.log.length = 0;
    const report = await h.daemon.stop(0);
    assert.deepEqual(h.log, ['stop 8153#2 grace 0', 'stop 8100#1 grace 0', 'remove tproxy_rules']);
    assert.deepEqual([report.completed, Object.keys(report.counters)], [1, ['dns']]);
    await assert.rejects(h.daemon.reload(config(`listeners:\n${DNS}`)), /stopping/);
  });

  it('operations (status, metrics) read the listeners and rules in force at each request, so they follow a reload', async () => {
    const h = harness(config(`listeners:\n${WEB}`));
    const ops = new Operations({ log: () => undefined, version: '0.0.0', engine: 'splice', configFile: '/etc/tproxy.yaml', argv: ['--config', '/etc/tproxy.yaml', '--upstream-proxy', 'socks5://me:secret@192.0.2.7:1080'] });
    await ops.start({ listeners: () => h.daemon.listeners(), rules: () => h.daemon.appliedRules(), config: () => h.daemon.config });
    await h.daemon.start();
    assert.deepEqual([ops.config().rules.listeners.map((l) => l.name), ops.config().rulesApply, ops.config().file], [['web'], true, '/etc/tproxy.yaml']);
    assert.deepEqual(ops.config().argv, ['--config', '/etc/tproxy.yaml', '--upstream-proxy', 'socks5://me:***@192.0.2.7:1080'], 'passwords are masked');
    const before = await ops.status(5);
    assert.deepEqual([before.listeners.map((l) => l.name), before.rules.managed && 'inPlace' in before.rules && before.rules.inPlace], [['web'], true]);
    await h.daemon.reload(config(`listeners:\n${DNS}`));
    assert.deepEqual((await ops.status(5)).listeners.map((l) => l.name), ['dns']);
    assert.deepEqual((await ops.metricsSnapshot()).listeners.map((l) => l.name), ['dns']);
    await h.daemon.reload(config(`listeners:\n${DNS}rules: { apply: false }\n`));
    assert.deepEqual((await ops.status(5)).rules, { managed: false });
    assert.deepEqual([ops.config().rules.listeners.map((l) => l.name), ops.config().rulesApply], [['dns'], false], 'config follows the reload');
    await ops.close();
  });
});

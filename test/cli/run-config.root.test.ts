// `tproxy run --config`: two listeners with their own ports and upstream modes, and SIGHUP reloads
// with TCP flows in progress (also when the reload removes the last TCP listener, and with a UDP
// session when only log.level changes), inside a lab router namespace.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EchoReply } from '../../src/lab/agent.js';
import { LAB_ADDRESSES, Lab, type SpawnedProcess, untilReady } from '../../src/lab/topology.js';
import { JsonLines } from '../../src/lab/json-lines.js';
import type { DaemonStatus } from '../../src/daemon/admin-protocol.js';
import { cli } from '../helpers/cli.js';
import { type ProbeResult, type ProxyLine, startProxy } from '../helpers/lab-flows.js';
import { AGENT, BIN, TCP_PEER } from '../helpers/paths.js';
import { spawnAgent } from '../helpers/udp-lab.js';
import { until } from '../helpers/until.js';

const RULES = 'rules: { table: tproxy_cfg, routeTable: 131, rulePriority: 9131 }\ntcp: { workers: 1 }\n';
const WEB = '  - name: web\n    port: 8100\n    intercept: [tcp:80, tcp:81, udp:80]\n';
const ALT = '  - name: alt\n    port: 8101\n    intercept: [tcp:8080, udp:8080]\n    upstream: transparent\n    upstreamMark: 0x4\n';

/** Pieces of 1 KiB, 50 ms apart: a transfer of about 20 s, in progress across a reload. */
const PIECES = 400;

type Line = ProxyLine & { listener?: string; error?: string; kept?: string[]; added?: string[]; removed?: string[]; changed?: string[]; flowEventsSwitched?: string[]; flowsCompleted?: number; flowsReset?: number; id?: number; reason?: string };

/** Events the data plane reports per flow, only while log.level is debug. */
const FLOW_EVENTS = ['tcp.accept', 'tcp.connected', 'tcp.close', 'tcp.refused', 'udp.session.open', 'udp.session.close'];

interface TrickleResult {
  how: string;
  sentBytes: number;
  receivedBytes: number;
  sentSha256: string;
  receivedSha256: string;
}

describe('tproxy run --config in a namespace (root)', () => {
  let lab: Lab;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-config-'));
    lab = await Lab.create();
    for (const port of ['80', '8080']) {
      const server = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', port]);
      await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, `echo server on ${port} ready`);
    }
    const peer = lab.spawn('server', [process.execPath, TCP_PEER, 'server', '--port', '81']);
    await new JsonLines<{ event: string }>(peer.child.stdout!).waitFor((l) => l.event === 'ready', 30_000, 'tcp peer on 81 ready');
  });
  after(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const probe = async (transport: 'tcp' | 'udp', address: string, port: number, message: string): Promise<ProbeResult> => {
    const result = await lab.run('client', [process.execPath, AGENT, 'probe', transport, address, `${port}`, message, '--timeout-ms', '10000'], { check: false });
    return JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as ProbeResult;
  };
  /** A TCP transfer through port 81 lasting about pieces * 50 ms. */
  const trickle = (pieces: number): Promise<TrickleResult> =>
    lab.run('client', [process.execPath, TCP_PEER, 'client', 'trickle', LAB_ADDRESSES.server.ipv4, '81', `${pieces}`], { timeoutMs: 90_000 }).then((r) => JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as TrickleResult);
  const intact = (r: TrickleResult, pieces: number): void => {
    assert.equal(r.how, 'end', 'the transfer ended cleanly');
    assert.equal(r.receivedBytes, pieces * 1024);
    assert.equal(r.receivedSha256, r.sentSha256);
  };
  /** SIGHUP, then the daemon's next `what` line. */
  const hupAndWait = async (proxy: SpawnedProcess, lines: JsonLines<Line>, what: 'reload.applied' | 'reload.rejected'): Promise<Line> => {
    const seen = lines.items.filter((l) => l.type === what).length;
    proxy.child.kill('SIGHUP');
    await lines.waitFor(() => lines.items.filter((l) => l.type === what).length > seen, 60_000, what);
    return lines.items.filter((l) => l.type === what).pop() as Line;
  };
  const nothingLeft = async (): Promise<void> => {
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '', 'no table left');
    for (const family of ['-4', '-6']) assert.doesNotMatch((await lab.run('router', ['ip', family, 'rule'])).stdout, /9131/, `no ip ${family} rule left`);
  };

  it('relays TCP and UDP through two listeners with their own ports and upstream modes', async () => {
    const file = write('two.yaml', `listeners:\n${WEB}${ALT}${RULES}`);
    const { process: proxy, lines } = await startProxy(lab, ['--config', file]);
    const listening = (lines.items as Line[]).filter((l) => l.type === 'listening').map((l) => `${l.listener ?? '?'} ${(l as unknown as { transport: string; local: { port: number } }).transport} ${(l as unknown as { local: { port: number } }).local.port}`);
    assert.deepEqual([...new Set(listening)].sort(), ['alt tcp 8101', 'alt udp 8101', 'web tcp 8100', 'web udp 8100']);
    const ruleset = (await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_cfg'])).stdout;
    assert.match(ruleset, /tcp dport \{ 80, 81 \} tproxy ip to :8100 .* comment "tproxy: intercept tcp ipv4 \(web\)"/);
    assert.match(ruleset, /udp dport 8080 tproxy ip6 to :8101 .* comment "tproxy: intercept udp ipv6 \(alt\)"/);
    for (const transport of ['tcp', 'udp'] as const) {
      for (const [port, listener, seen] of [[80, 'web', LAB_ADDRESSES.routerServerSide], [8080, 'alt', LAB_ADDRESSES.client]] as const) {
        for (const family of ['ipv4', 'ipv6'] as const) {
          const host = LAB_ADDRESSES.server[family];
          const line = await probe(transport, host, port, `${transport} ${port} ${family}`);
          assert.equal(line.ok, true, `${transport} to ${host} port ${port}: ${line.reason ?? ''}`);
          assert.equal(line.reply?.seen.address, seen[family], `${listener} (${port}): the server sees the ${listener === 'web' ? 'router (direct)' : 'client (transparent)'}`);
          await lines.waitFor((l: Line) => (l.type === 'tcp.accept' || l.type === 'udp.session.open') && l.listener === listener && l.originalDestination?.address === host && l.originalDestination.port === port, 15_000, `${listener} reporting the ${transport} flow to ${host}:${port}`);
        }
      }
    }
    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    await nothingLeft();
  });

  it('reloads on SIGHUP: flows in progress survive, an added listener works, an invalid file changes nothing, a removed listener drains', async () => {
    const file = write('reload.yaml', `listeners:\n${WEB}${RULES}`);
    const { process: proxy, lines } = await startProxy(lab, ['--config', file]);
    const hup = (what: 'reload.applied' | 'reload.rejected'): Promise<Line> => hupAndWait(proxy, lines, what);
    const flowsTo81 = (): number => lines.items.filter((l) => l.type === 'tcp.accept' && l.originalDestination?.port === 81).length;

    // An added listener; the unchanged one keeps its flow.
    const first = trickle(PIECES);
    await lines.waitFor(() => flowsTo81() === 1, 30_000, 'the first transfer reaching the proxy');
    assert.equal((await probe('tcp', LAB_ADDRESSES.server.ipv4, 8080, 'before the reload')).reply?.seen.address, LAB_ADDRESSES.client.ipv4, 'not intercepted yet: the server sees the client, as routed');
    writeFileSync(file, `listeners:\n${WEB}${ALT}${RULES}`);
    const added = await hup('reload.applied');
    assert.deepEqual([added.kept, added.added, added.removed, added.changed], [['web'], ['alt'], [], []]);
    for (const transport of ['tcp', 'udp'] as const) {
      assert.equal((await probe(transport, LAB_ADDRESSES.server.ipv6, 8080, `${transport} after the reload`)).ok, true);
      await lines.waitFor((l: Line) => (l.type === 'tcp.accept' || l.type === 'udp.session.open') && l.listener === 'alt' && l.originalDestination?.port === 8080, 15_000, `the added listener relaying ${transport}`);
    }

    // An invalid file: refused with the exact error, the running configuration stays.
    writeFileSync(file, `listeners:\n  - name: web\n    port: 70000\n${RULES}`);
    const rejected = await hup('reload.rejected');
    assert.equal(rejected.error, `${file}:3:11: listeners[0].port: 70000 is not allowed: use a port from 1 to 65535`);
    for (const port of [80, 8080]) assert.equal((await probe('udp', LAB_ADDRESSES.server.ipv4, port, `after the refused reload ${port}`)).ok, true, `port ${port} still relayed`);
    intact(await first, PIECES);
    const closedAt = lines.items.findIndex((l: Line) => l.type === 'tcp.close' && l.originalDestination?.port === 81);
    assert.ok(closedAt > lines.items.findIndex((l) => l.type === 'reload.applied'), 'the first transfer was still in progress when the reload was applied');
    assert.equal(lines.items.filter((l: Line) => l.type === 'tcp.close' && l.listener === 'web' && l.originalDestination?.port === 81 && (l as { reason?: string }).reason === 'done').length, 1, 'the first transfer went through the proxy to its end');

    // A removed listener stops accepting; its flow in progress finishes.
    const second = trickle(PIECES);
    await lines.waitFor(() => flowsTo81() === 2, 30_000, 'the second transfer reaching the proxy');
    writeFileSync(file, `listeners:\n${ALT}${RULES}`);
    const removed = await hup('reload.applied');
    assert.deepEqual([removed.kept, removed.added, removed.removed], [['alt'], [], ['web']]);
    assert.equal((await probe('tcp', LAB_ADDRESSES.server.ipv4, 80, 'after web was removed')).reply?.seen.address, LAB_ADDRESSES.client.ipv4, 'port 80 is no longer intercepted');
    intact(await second, PIECES);
    const stopped = (await lines.waitFor((l: Line) => l.type === 'listener.stopped' && l.listener === 'web', 30_000, 'the removed listener stopping once its flow ended')) as Line;
    assert.deepEqual([stopped.flowsCompleted, stopped.flowsReset], [1, 0]);
    assert.equal(flowsTo81(), 2, 'no new flow reached the removed listener');

    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    await nothingLeft();
  });

  it('keeps the divert rule and policy routing of the last TCP and IPv4 listener while it drains, then removes them', async () => {
    const file = write('last.yaml', `listeners:\n${WEB}${RULES}`);
    const { process: proxy, lines } = await startProxy(lab, ['--config', file]);
    const hup = async (): Promise<Line> => {
      const seen = lines.items.filter((l) => l.type === 'reload.applied').length;
      proxy.child.kill('SIGHUP');
      await lines.waitFor(() => lines.items.filter((l) => l.type === 'reload.applied').length > seen, 60_000, 'reload.applied');
      return lines.items.filter((l) => l.type === 'reload.applied').pop() as Line;
    };
    const table = async (): Promise<string> => (await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_cfg'])).stdout;
    const rule4 = async (): Promise<string> => (await lab.run('router', ['ip', '-4', 'rule'])).stdout;

    const transfer = trickle(PIECES);
    await lines.waitFor((l: Line) => l.type === 'tcp.accept' && l.originalDestination?.port === 81, 30_000, 'the transfer reaching the proxy');
    // The only listener now relays UDP over IPv6: no TCP and no IPv4 of its own.
    writeFileSync(file, `listeners:\n  - name: dns\n    port: 8102\n    families: [6]\n    intercept: [udp:8080]\n${RULES}`);
    const reloaded = await hup();
    assert.deepEqual([reloaded.kept, reloaded.added, reloaded.removed], [[], ['dns'], ['web']]);
    const during = { table: await table(), rule4: await rule4() };
    assert.equal((await probe('udp', LAB_ADDRESSES.server.ipv6, 8080, 'udp to the new listener')).ok, true);
    await lines.waitFor((l: Line) => l.type === 'udp.session.open' && l.listener === 'dns', 15_000, 'the new listener relaying udp');

    // Without the divert rule and the IPv4 policy routing the flow's packets bypass its socket: it breaks.
    intact(await transfer, PIECES);
    assert.match(during.table, /comment "tproxy: divert tcp ipv4"/, 'the draining flow still reaches its socket');
    assert.doesNotMatch(during.table, /tproxy ip to :8100|dport \{ 80, 81 \}/, 'nothing new goes to the removed listener');
    assert.match(during.rule4, /9131/, 'IPv4 policy routing stays for the draining flow');
    const stoppedAt = (): number => lines.items.findIndex((l: Line) => l.type === 'listener.stopped' && l.listener === 'web');
    const stopped = (await lines.waitFor((l: Line) => l.type === 'listener.stopped' && l.listener === 'web', 30_000, 'the removed listener stopping once its flow ended')) as Line;
    assert.deepEqual([stopped.flowsCompleted, stopped.flowsReset], [1, 0]);
    await lines.waitFor(() => lines.items.some((l, i) => i > stoppedAt() && l.type === 'rules.applied'), 30_000, 'the rules applied again without the drained listener');
    const after = await table();
    assert.doesNotMatch(after, /divert tcp|ipv4/, 'no TCP divert rule and nothing of IPv4 left');
    assert.match(after, /comment "tproxy: divert udp ipv6"/);
    assert.doesNotMatch(await rule4(), /9131/, 'no IPv4 policy routing left');
    assert.match((await lab.run('router', ['ip', '-6', 'rule'])).stdout, /9131/);

    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    await nothingLeft();
  });

  it('reloads a change of log.level alone in place: the TCP flow and the UDP session go on, per-flow events switch on and off', async () => {
    const socket = join(dir, 'admin.sock');
    const file = write('level.yaml', `listeners:\n${WEB}${RULES}admin: { socket: ${socket} }\nlog: { level: info, format: json }\n`);
    const level = (name: string): void => writeFileSync(file, `listeners:\n${WEB}${RULES}admin: { socket: ${socket} }\nlog: { level: ${name}, format: json }\n`);
    // Not startProxy: its --log-level flag would override the file's log.level on every reload.
    const proxy = lab.spawn('router', [process.execPath, BIN, 'run', '--config', file]);
    const lines = new JsonLines<Line>(proxy.child.stderr!);
    await untilReady(proxy, lines.waitFor((l) => l.type === 'ready', 60_000, 'tproxy run ready'));
    const status = async (): Promise<DaemonStatus> => {
      const r = await cli('status', '--socket', socket, '--json', '--top', '5');
      assert.equal(r.code, 0, r.err);
      return JSON.parse(r.out) as DaemonStatus;
    };
    const udpSessions = async (): Promise<number> => (await status()).listeners[0]?.counters.udp?.sessionsCreated ?? -1;
    const workersStarted = (): number => lines.items.filter((l) => l.type === 'worker.start').length;

    // A UDP session: one client socket, the server tells which source port it saw (the session's upstream socket).
    const peer = spawnAgent<{ event: string; text?: string; local?: { port: number } }>(lab, 'client', ['udp-peer']);
    const peerPort = (await peer.lines.waitFor((l) => l.event === 'ready', 5000, 'udp-peer ready')).local?.port;
    const echo = async (message: string): Promise<EchoReply> => {
      peer.send(`send ${LAB_ADDRESSES.server.ipv4} 80 ${message}`);
      const datagram = await peer.lines.waitFor((l) => l.event === 'datagram' && (JSON.parse(l.text ?? '{}') as EchoReply).message === message, 10_000, `the echo of ${message}`);
      return JSON.parse(datagram.text ?? '{}') as EchoReply;
    };
    const first = await echo('before the reload');
    assert.equal(first.seen.address, LAB_ADDRESSES.routerServerSide.ipv4, 'relayed by the proxy (direct upstream)');
    assert.equal(await udpSessions(), 1);

    // A TCP flow in progress across both reloads.
    const flowing = trickle(PIECES);
    const flowOf = (s: DaemonStatus): DaemonStatus['flows'][number] | undefined => s.flows.find((f) => f.originalDestination.port === 81);
    const before = flowOf(await until(status, (s) => (flowOf(s)?.bytesFromClient ?? 0) >= 4 * 1024, 30_000, 'the trickling flow in status'));
    assert.ok(before);
    const started = workersStarted();
    assert.equal(lines.items.filter((l) => FLOW_EVENTS.includes(l.type)).length, 0, 'no flow events at info');

    level('debug');
    const on = await hupAndWait(proxy, lines, 'reload.applied');
    assert.deepEqual([on.kept, on.added, on.removed, on.changed, on.flowEventsSwitched], [['web'], [], [], [], ['web']]);
    assert.equal(workersStarted(), started, 'no TCP worker was restarted');
    assert.equal(lines.items.filter((l) => l.type === 'listener.draining').length, 0, 'no listener was stopped');
    // The same connection (client port, worker) goes on moving bytes.
    const moving = flowOf(await until(status, (s) => (flowOf(s)?.bytesFromClient ?? 0) > before.bytesFromClient, 30_000, 'the trickling flow moving after the reload'));
    assert.deepEqual([moving?.client, moving?.pid], [before.client, before.pid]);
    // The same UDP session: the same upstream port, no session created.
    assert.equal((await echo('after debug')).seen.port, first.seen.port, 'the server sees the same source port');
    assert.equal(await udpSessions(), 1, 'no UDP session was created');
    assert.equal(lines.items.filter((l) => l.type === 'udp.session.open' && l.client?.port === peerPort).length, 0, 'the UDP session was not opened again');

    // New flows are reported now.
    assert.equal((await probe('tcp', LAB_ADDRESSES.server.ipv4, 80, 'tcp at debug')).ok, true);
    const accepted = await lines.waitFor((l) => l.type === 'tcp.accept' && l.listener === 'web' && l.originalDestination?.port === 80, 15_000, 'tcp.accept of a new flow at debug');
    await lines.waitFor((l) => l.type === 'tcp.close' && l.id === accepted.id && l.listener === 'web', 15_000, 'tcp.close of that flow');
    assert.equal((await probe('udp', LAB_ADDRESSES.server.ipv4, 80, 'udp at debug')).ok, true);
    await lines.waitFor((l) => l.type === 'udp.session.open' && l.listener === 'web' && l.originalDestination?.port === 80, 15_000, 'udp.session.open of a new session at debug');
    // The flow accepted at info ends through the proxy, reported as it closes.
    intact(await flowing, PIECES);
    const closed = await lines.waitFor((l) => l.type === 'tcp.close' && l.originalDestination?.port === 81, 30_000, 'tcp.close of the flow accepted before the reload');
    assert.equal(closed.reason, 'done');
    assert.equal(lines.items.filter((l) => l.type === 'tcp.accept' && l.originalDestination?.port === 81).length, 0, 'it was accepted before flow events were on: the same connection');

    level('info');
    const off = await hupAndWait(proxy, lines, 'reload.applied');
    assert.deepEqual([off.kept, off.changed, off.flowEventsSwitched], [['web'], [], ['web']]);
    const quietFrom = lines.items.length;
    assert.equal((await probe('tcp', LAB_ADDRESSES.server.ipv4, 80, 'tcp at info')).ok, true);
    assert.equal((await probe('udp', LAB_ADDRESSES.server.ipv4, 80, 'udp at info')).ok, true);
    assert.equal((await echo('after info')).seen.port, first.seen.port, 'still the same UDP session');
    peer.proc.child.stdin?.end();
    await peer.proc.exited;

    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    // Every event of the daemon is out once it exited: none per flow after the switch back.
    assert.deepEqual(lines.items.slice(quietFrom).filter((l) => FLOW_EVENTS.includes(l.type)).map((l) => l.type), []);
    const stopped = lines.items.find((l) => l.type === 'stopped') as unknown as { counters: { tcp: { accepted: number } } } | undefined;
    const udpStats = lines.items.find((l) => l.type === 'udp.stats') as unknown as { counters: { sessionsCreated: number } } | undefined;
    assert.deepEqual([stopped?.counters.tcp.accepted, udpStats?.counters.sessionsCreated], [3, 3], 'the trickle and a probe at debug and at info each (TCP); the session kept throughout and a probe at debug and at info each (UDP)');
    assert.equal(workersStarted(), started, 'no TCP worker was restarted by either reload');
    await nothingLeft();
  });
});

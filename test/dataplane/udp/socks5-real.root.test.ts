// UDP through socks5 outbounds (SOCKS5 UDP ASSOCIATE), through real kernel rules: Dante's danted
// (Debian dante-server) as the proxy, without and with RFC 1929 username/password, on IPv4 and on
// IPv6, 50 client ports at once, danted killed mid-session and started again; and SOCKS servers written here for what a
// real one will not do on request: a relay answered as 0.0.0.0 that also sends fragments (dropped)
// and relays from anyone (full cone through the proxy), a refusal (REP=7), garbage, silence. Each
// failure ends its own session only, counted by reason and per outbound. Full cone and routes: a
// datagram from a new remote whose route is reject is dropped and counted (direct and socks5).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A, Lab } from '../../../src/lab/topology.js';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { waitForLog, type Daemon } from '../../helpers/daemon.js';
import { startDante } from '../../helpers/dante.js';
import { FAKE_SOCKS5 } from '../../helpers/paths.js';
import { agent, spawnAgent, startEchoServer, startProxy, type LogLine, type RunningProxy } from '../../helpers/udp-lab.js';
import { sumUdpCounters, type UdpCounters } from '../../../src/dataplane/udp/counters.js';
import { UDP_ENGINE_CHOICES } from '../../../src/sys/datagram-io.js';

const SERVER = A.server.ipv4;
const PORTS = { socks: 80, auth: 81, zero: 82, refuse: 83, garbage: 84, silent: 85, v6: 86, named: 87, cone: 90, coneDirect: 91, coneNamed: 92 } as const;
const SOCKS = { socks: 1080, auth: 1081, zero: 1082, refuse: 1083, garbage: 1084, silent: 1085, v6: 1086, named: 1087 } as const;
const SERVER6 = A.server.ipv6;
// Throwaway credentials of a server that lives only in the test's namespace.
const USER = { name: 'tpxudp', password: 'udp-pw-1' };
const STRANGER_OK = 9998;
const STRANGER_BLOCKED = 9999;

const url = (port: number, auth = ''): string => `socks5://${auth}${SERVER}:${port}`;
const config = `listeners:
  - name: main
    port: 8700
    intercept: ["udp:80-87"]
    upstream: direct
  - name: cone
    port: 8701
    intercept: ["udp:90-92"]
    upstream: direct
    udp: { mapping: endpoint-independent }
routes:
  - { name: via-socks, outbound: socks, ports: [${PORTS.socks}] }
  - { name: via-auth, outbound: socks-auth, ports: [${PORTS.auth}] }
  - { name: via-zero, outbound: zero, ports: [${PORTS.zero}, ${PORTS.cone}] }
  - { name: via-refuse, outbound: refuse, ports: [${PORTS.refuse}] }
  - { name: via-garbage, outbound: garbage, ports: [${PORTS.garbage}] }
  - { name: via-silent, outbound: silent, ports: [${PORTS.silent}] }
  - { name: via-v6, outbound: socks6, ports: [${PORTS.v6}] }
  - { name: via-named, outbound: named, ports: [${PORTS.named}, ${PORTS.coneNamed}] }
  - { name: blocked, outbound: reject, ports: [${STRANGER_BLOCKED}] }
outbounds:
  - { name: socks, kind: socks5, url: "${url(SOCKS.socks)}" }
  - { name: socks-auth, kind: socks5, url: "${url(SOCKS.auth, `${USER.name}:${USER.password}@`)}" }
  - { name: zero, kind: socks5, url: "${url(SOCKS.zero)}" }
  - { name: refuse, kind: socks5, url: "${url(SOCKS.refuse)}" }
  - { name: garbage, kind: socks5, url: "${url(SOCKS.garbage)}" }
  - { name: silent, kind: socks5, url: "${url(SOCKS.silent)}" }
  - { name: socks6, kind: socks5, url: "socks5://[${SERVER6}]:${SOCKS.v6}" }
  - { name: named, kind: socks5, url: "${url(SOCKS.named)}" }
rules:
  table: tproxy_udp_socks
  routeTable: 152
  rulePriority: 9152
`;

interface Datagram {
  event: string;
  from?: { address: string; port: number };
  text?: string;
}

interface FlowsResult {
  ok: boolean;
  replies: number;
  distinctServerSeenPorts: number;
  problems: string[];
}

/** `pid` and its descendants (danted's children rename themselves, so they are found by parent). */
function processTree(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length && i < 1000; i++) for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  return tree;
}

for (const engine of UDP_ENGINE_CHOICES) describe(`UDP through socks5 outbounds (root, ${engine} engine)`, () => {
  let lab: Lab;
  let dir: string;
  let proxy: RunningProxy;
  let socks: Daemon;
  let auth: Daemon;
  let socks6: Daemon;
  const fakes = new Map<string, JsonLines<{ event: string; [key: string]: unknown }>>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-udp-socks-'));
    lab = await Lab.create();
    try {
      for (const port of [PORTS.socks, PORTS.auth, PORTS.zero, PORTS.v6, PORTS.named, PORTS.cone, PORTS.coneDirect, PORTS.coneNamed]) await startEchoServer(lab, port);
      [socks, auth, socks6] = await Promise.all([
        startDante(lab, 'server', dir, { address: SERVER, port: SOCKS.socks, udp: true }),
        startDante(lab, 'server', dir, { address: SERVER, port: SOCKS.auth, user: USER, udp: true }),
        startDante(lab, 'server', dir, { address: SERVER6, port: SOCKS.v6, udp: true }),
      ]);
      for (const mode of ['zero', 'named', 'refuse', 'garbage', 'silent'] as const) {
        const fake = lab.spawn('server', [process.execPath, FAKE_SOCKS5, SERVER, `${SOCKS[mode]}`, mode]);
        const lines = new JsonLines<{ event: string; [key: string]: unknown }>(fake.child.stdout!);
        await lines.waitFor((l) => l.event === 'ready', 10_000, `fake SOCKS5 server ${mode} ready`);
        fakes.set(mode, lines);
      }
      const file = join(dir, 'tproxy.yaml');
      writeFileSync(file, config);
      proxy = await startProxy(lab, ['--config', file], engine);
    } catch (error) {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  });
  after(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const failedEvent = (reason: string): Promise<LogLine> => proxy.lines.waitFor((l) => l.type === 'udp.outbound.failed' && l.reason === reason, 15_000, `a udp.outbound.failed line for ${reason}`);
  const opened = (outbound: string): LogLine[] => proxy.lines.items.filter((l) => l.type === 'udp.session.open' && l.outbound === outbound);
  // Session ids are per listener: a session is known by its id, client and destination.
  const sessionKey = (l: LogLine): string => `${l.id}|${l.client?.address}|${l.client?.port}|${l.originalDestination?.address}|${l.originalDestination?.port}`;
  const closed = (): Map<string, string> => new Map(proxy.lines.items.filter((l) => l.type === 'udp.session.close').map((l) => [sessionKey(l), l.reason ?? '']));

  it('danted without authentication: 50 client ports at once, each its own association; danted logs the original destination', async () => {
    const result = await agent<FlowsResult>(lab, 'client', ['udp-flows', SERVER, `${PORTS.socks}`, '--count', '50', '--rounds', '2']);
    assert.deepEqual(result.problems, []);
    assert.equal(result.replies, 100);
    assert.equal(result.distinctServerSeenPorts, 50, 'danted relayed each session from its own port: 50 associations');
    await waitForLog(socks, new RegExp(`udpassociate.*${SERVER.replaceAll('.', '\\.')}\\.${PORTS.socks}\\b`), 10_000);
    assert.equal(opened('socks').length, 50);
    assert.ok(opened('socks').every((l) => l.route === 'via-socks'));
  });

  it('danted with RFC 1929 username/password', async () => {
    const client = spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', '0.0.0.0']);
    try {
      await client.lines.waitFor((l) => l.event === 'ready', 5000, 'client ready');
      client.send(`send ${SERVER} ${PORTS.auth} through the authenticated association`);
      const echo = await client.lines.waitFor((l) => l.event === 'datagram', 10_000, 'the echo through danted with auth');
      assert.deepEqual(echo.from, { address: SERVER, port: PORTS.auth }, 'the reply comes from the original destination');
      assert.equal((JSON.parse(echo.text ?? '{}') as { message: string }).message, 'through the authenticated association');
      const log = await waitForLog(auth, new RegExp(`username%${USER.name}@.*${SERVER.replaceAll('.', '\\.')}\\.${PORTS.auth}\\b`), 10_000);
      assert.ok(!log.includes(USER.password));
    } finally {
      client.proc.child.stdin?.end();
      await client.proc.exited;
    }
  });

  it('IPv6: a client, its destination and danted all on IPv6', async () => {
    const client = spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', '::']);
    try {
      await client.lines.waitFor((l) => l.event === 'ready', 5000, 'client ready');
      client.send(`send ${SERVER6} ${PORTS.v6} over IPv6`);
      const echo = await client.lines.waitFor((l) => l.event === 'datagram', 10_000, 'the echo through danted on IPv6');
      assert.deepEqual(echo.from, { address: SERVER6, port: PORTS.v6 }, 'the reply comes from the original destination');
      const seen = (JSON.parse(echo.text ?? '{}') as { seen: { address: string } }).seen;
      assert.equal(seen.address, SERVER6, 'the server saw danted, on IPv6');
      await waitForLog(socks6, new RegExp(`udpassociate.*${SERVER6}\\.${PORTS.v6}\\b`), 10_000);
    } catch (error) {
      throw new Error(`${String(error)}\nproxy: ${proxy.lines.text.filter((t) => t.includes(SERVER6) || t.includes('socks6')).slice(-6).join('\n')}\ndanted: ${socks6.log().slice(-1500)}`, { cause: error });
    } finally {
      client.proc.child.stdin?.end();
      await client.proc.exited;
    }
  });

  it('a relay answered as 0.0.0.0 is the proxy\'s own address; fragments from it are dropped, counted', async () => {
    const client = spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', '0.0.0.0']);
    try {
      await client.lines.waitFor((l) => l.event === 'ready', 5000, 'client ready');
      client.send(`send ${SERVER} ${PORTS.zero} zero relay`);
      const echo = await client.lines.waitFor((l) => l.event === 'datagram', 10_000, 'the echo through the 0.0.0.0 relay');
      assert.deepEqual(echo.from, { address: SERVER, port: PORTS.zero });
      await fakes.get('zero')!.waitFor((l) => l.event === 'relay-in', 5000, 'the fake relaying the reply');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(client.lines.items.filter((l) => l.event === 'datagram').length, 1, 'the fragment sent before the reply never reached the client');
      assert.deepEqual(fakes.get('zero')!.find((l) => l.event === 'request')?.['client'], { host: '0.0.0.0', port: 0 }, 'UDP ASSOCIATE names no source address');
    } finally {
      client.proc.child.stdin?.end();
      await client.proc.exited;
    }
  });

  it('a reply whose header names its sender by name: taken as the destination\'s under endpoint-dependent mapping, dropped under full cone (a reply needs an address)', async () => {
    const client = spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', '0.0.0.0']);
    try {
      await client.lines.waitFor((l) => l.event === 'ready', 5000, 'client ready');
      client.send(`send ${SERVER} ${PORTS.named} by name`);
      const echo = await client.lines.waitFor((l) => l.event === 'datagram', 10_000, 'the echo named by name');
      assert.deepEqual(echo.from, { address: SERVER, port: PORTS.named }, 'sent from the original destination');
      client.send(`send ${SERVER} ${PORTS.coneNamed} by name under full cone`);
      await fakes.get('named')!.waitFor((l) => l.event === 'relay-in' && (l['from'] as { port: number }).port === PORTS.coneNamed, 5000, 'the fake relaying the full-cone reply');
      await proxy.lines.waitFor((l) => l.type === 'udp.drop' && l.reason === 'socks5-bad-datagram', 5000, 'the drop of the named reply under full cone');
      assert.equal(client.lines.items.filter((l) => l.event === 'datagram').length, 1, 'the full-cone reply named by name never reached the client');
    } finally {
      client.proc.child.stdin?.end();
      await client.proc.exited;
    }
  });

  it('a refusal (REP=7), garbage and silence each fail their own session, counted per outbound; other sessions go on', async () => {
    const client = spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', '0.0.0.0']);
    try {
      await client.lines.waitFor((l) => l.event === 'ready', 5000, 'client ready');
      for (const port of [PORTS.refuse, PORTS.garbage, PORTS.silent]) client.send(`send ${SERVER} ${port} doomed`);
      const [refused, garbage] = [await failedEvent('socks5-refused'), await failedEvent('socks5-protocol')];
      assert.equal(refused['outbound'], 'refuse');
      assert.equal(refused['detail'], 'socks5-command-not-supported');
      assert.equal(garbage['outbound'], 'garbage');
      // A working outbound meanwhile: unaffected.
      client.send(`send ${SERVER} ${PORTS.socks} still fine`);
      await client.lines.waitFor((l) => l.event === 'datagram' && (l.text ?? '').includes('still fine'), 10_000, 'the echo through danted');
      const silent = await failedEvent('socks5-timeout');
      assert.equal(silent['outbound'], 'silent');
      assert.equal(client.lines.items.filter((l) => l.event === 'datagram').length, 1, 'nothing came back through the failed outbounds');
    } finally {
      client.proc.child.stdin?.end();
      await client.proc.exited;
    }
  });

  it('full cone through the proxy: a stranger reaches the client through the association; one whose route is reject is dropped', async () => {
    for (const [port, viaProxy] of [[PORTS.cone, true], [PORTS.coneDirect, false]] as const) {
      const client = spawnAgent<Datagram>(lab, 'client', ['udp-peer', '--bind', '0.0.0.0']);
      const ok = spawnAgent<Datagram>(lab, 'server', ['udp-peer', '--bind', SERVER, '--port', `${STRANGER_OK}`]);
      const blocked = spawnAgent<Datagram>(lab, 'server', ['udp-peer', '--bind', SERVER, '--port', `${STRANGER_BLOCKED}`]);
      try {
        for (const p of [client, ok, blocked]) await p.lines.waitFor((l) => l.event === 'ready', 5000, 'peer ready');
        client.send(`send ${SERVER} ${port} open the mapping`);
        const echo = await client.lines.waitFor((l) => l.event === 'datagram', 10_000, 'the echo that shows the mapping');
        const mapped = (JSON.parse(echo.text ?? '{}') as { seen: { address: string; port: number } }).seen;
        assert.equal(mapped.address, viaProxy ? SERVER : A.routerServerSide.ipv4, viaProxy ? 'the mapping is the proxy\'s relay' : 'the mapping is on the router');
        const rejectedBefore = proxy.lines.items.filter((l) => l.type === 'udp.drop' && l.reason === 'rejected').length;
        blocked.send(`send ${mapped.address} ${mapped.port} from a blocked stranger`);
        await blocked.lines.waitFor((l) => l.event === 'sent', 5000, 'the blocked stranger sending');
        ok.send(`send ${mapped.address} ${mapped.port} from a stranger`);
        const got = await client.lines.waitFor((l) => l.event === 'datagram' && l.text === 'from a stranger', 10_000, 'the stranger reaching the client');
        assert.deepEqual(got.from, { address: SERVER, port: STRANGER_OK }, 'the stranger is the source the client sees');
        await new Promise((r) => setTimeout(r, 300));
        assert.ok(!client.lines.items.some((l) => l.text === 'from a blocked stranger'), 'the stranger whose route is reject never reached the client');
        if (rejectedBefore === 0) await proxy.lines.waitFor((l) => l.type === 'udp.drop' && l.reason === 'rejected', 5000, 'the drop of the blocked stranger');
      } finally {
        for (const p of [client, ok, blocked]) p.proc.child.stdin?.end();
        await Promise.all([client.proc.exited, ok.proc.exited, blocked.proc.exited]);
      }
    }
  });

  it('danted killed mid-session: its sessions end (socks5-control-closed), nothing else; after a restart a new session works', async () => {
    const result = await agent<FlowsResult>(lab, 'client', ['udp-flows', SERVER, `${PORTS.socks}`, '--count', '5']);
    assert.deepEqual(result.problems, []);
    const gone = closed();
    const alive = opened('socks').map(sessionKey).filter((key) => !gone.has(key));
    assert.ok(alive.length >= 5, `sessions through danted alive before the kill: ${alive.length}`);
    const others = proxy.lines.items.filter((l) => l.type === 'udp.session.open' && l.outbound !== 'socks').map(sessionKey).filter((key) => !gone.has(key));
    const mother = socks.process.child.pid;
    assert.ok(mother !== undefined, 'danted runs');
    // danted itself (ip netns exec execs it) and its children: processes this test started.
    for (const pid of processTree(mother)) process.kill(pid, 'SIGKILL');
    await socks.process.exited;
    const deadline = Date.now() + 15_000;
    while (alive.some((key) => !closed().has(key)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const ends = closed();
    assert.deepEqual(alive.filter((key) => ends.get(key) !== 'socks5-control-closed'), [], 'every session through danted ended with socks5-control-closed');
    assert.deepEqual(others.filter((key) => ends.has(key)), [], 'no session of another outbound ended');
    await failedEvent('socks5-control-closed');
    // Started again on the same address and port: a new session works.
    socks = await startDante(lab, 'server', dir, { address: SERVER, port: SOCKS.socks, udp: true });
    const again = await agent<FlowsResult>(lab, 'client', ['udp-flows', SERVER, `${PORTS.socks}`, '--count', '3']);
    assert.deepEqual(again.problems, []);
  });

  it('counts every failure by reason and per outbound, and the fragments', async () => {
    await proxy.stop();
    // One udp.stats line per listener: added up.
    const counters = sumUdpCounters(proxy.lines.items.filter((l) => l.type === 'udp.stats').map((l) => l.counters as UdpCounters));
    assert.ok((counters.errors['socks5-fragmented'] ?? 0) >= 2, `fragments dropped: ${counters.errors['socks5-fragmented']}`);
    for (const reason of ['socks5-refused', 'socks5-protocol', 'socks5-timeout', 'socks5-control-closed'] as const) assert.ok(counters.errors[reason] >= 1, `${reason}: ${counters.errors[reason]}`);
    assert.equal(counters.outbounds['refuse']?.failed, 1);
    assert.equal(counters.outbounds['garbage']?.failed, 1);
    assert.equal(counters.outbounds['silent']?.failed, 1);
    assert.ok((counters.outbounds['socks']?.failed ?? 0) >= 5);
    assert.equal(counters.outbounds['socks-auth']?.failed, 0);
    assert.equal(counters.routes['blocked']?.rejected, 2, 'the blocked stranger, once per listener mapping');
    assert.ok((counters.outbounds['socks']?.datagramsFromServers ?? 0) >= 100);
  });
});

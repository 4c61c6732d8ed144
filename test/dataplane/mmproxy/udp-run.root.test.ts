// UDP mmproxy through `tproxy run` with a configuration file (issue 16), as an operator replacing
// go-mmproxy runs it: two `protocol: udp` entries and no `listeners:`, one with its backends on the
// router's loopback, one with its backends on the server (another host). A sender written for the
// test plays the balancer (client namespace) and sends PROXY v2 DGRAM headers plus payload for two
// clients, IPv4 and IPv6; the echo backends answer with the source they saw. Each echo sees the
// client's own address and port, every reply reaches the balancer without a header, the daemon's
// status counts the headers and sessions, doctor and explain follow the reply datagrams, and at
// SIGTERM every rule the daemon made is gone. At log level debug each session is reported
// (mmproxy.udp.open, and at its end mmproxy.udp.close with datagrams and bytes each way).
// A third entry (`wild`) has its backend on loopback bound to the wildcard address (0.0.0.0, ::): the
// echo gets the datagrams but its answers take the source the route lookup picks (the router's
// default route here, as on a real host), miss the loopback rule and never come back; doctor warns
// about exactly that backend.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Endpoint } from '../../../src/core/net/sockaddr.js';
import { encodeProxyHeaderV2 } from '../../../src/core/proxy-protocol/v2.js';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { Lab, LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { BIN, UDP_PEERS } from '../../helpers/paths.js';
import { until } from '../../helpers/until.js';

const LISTEN = { 4: LAB_ADDRESSES.routerClientSide.ipv4, 6: LAB_ADDRESSES.routerClientSide.ipv6 } as const;
const SERVER = { 4: LAB_ADDRESSES.server.ipv4, 6: LAB_ADDRESSES.server.ipv6 } as const;
const LOOPBACK = { 4: '127.0.0.1', 6: '::1' } as const;
/** The clients the headers name (not configured anywhere: the session sockets bind them with IP_FREEBIND). */
const CLIENTS = { 4: ['192.0.2.30', '192.0.2.31'], 6: ['2001:db8:98::30', '2001:db8:98::31'] } as const;
/** The entries' ports: `local` has its backends on the router's loopback, `remote` on the server. */
const PORTS = { local: 8453, remote: 8454 } as const;
const WILD_PORT = 8455;
const ECHO = 7007;
/** The wildcard-bound echo's port (the `wild` entry's backends). */
const WILD_ECHO = 7008;
const ROUTE_TABLE = 100;

type Line = {
  type: string;
  listeners?: number;
  from?: string;
  code?: string;
  listener?: string;
  id?: number;
  balancer?: Endpoint;
  client?: Endpoint;
  originalDestination?: Endpoint;
  backend?: Endpoint;
  datagramsFromClient?: number;
  datagramsFromBackend?: number;
  bytesFromClient?: number;
  bytesFromBackend?: number;
  reason?: string;
};

const ep = (address: string, port: number): Endpoint => ({ family: address.includes(':') ? 6 : 4, address, port });
/** A balancer's datagram: the PROXY v2 header (PROXY, DGRAM) naming `client`, then `payload`; as hex. */
function datagram(client: Endpoint, destination: Endpoint, payload: string): string {
  return Buffer.concat([encodeProxyHeaderV2({ command: 'proxy', transport: 'udp', addresses: { source: client, destination } }), Buffer.from(payload)]).toString('hex');
}

describe('tproxy run: UDP mmproxy entries from a configuration file (root)', () => {
  let lab: Lab;
  let dir: string;
  let daemon: ReturnType<Lab['spawn']>;
  let daemonLog: JsonLines<Line>;
  let wildEcho: JsonLines<Line>;
  const socket = (): string => path.join(dir, 'admin.sock');

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tproxy-mmproxy-udp-run-'));
    lab = await Lab.create();
    try {
      // The backend on loopback binds the loopback addresses (see docs/mmproxy.md, UDP).
      for (const host of ['router', 'server'] as const) {
        const echo = lab.spawn(host, [process.execPath, UDP_PEERS, 'echo', String(ECHO), ...(host === 'router' ? [LOOPBACK[4], LOOPBACK[6]] : [])]);
        await new JsonLines<Line>(echo.child.stdout!).waitFor((l) => l.type === 'ready', 10_000, `the echo on ${host}`);
      }
      const wild = lab.spawn('router', [process.execPath, UDP_PEERS, 'echo', String(WILD_ECHO)]);
      wildEcho = new JsonLines<Line>(wild.child.stdout!);
      await wildEcho.waitFor((l) => l.type === 'ready', 10_000, 'the wildcard-bound echo on the router');
      // A default route, as a real host has: where a wildcard-bound socket's answers to clients go.
      await lab.run('router', ['ip', 'route', 'add', 'default', 'via', SERVER[4]]);
      await lab.run('router', ['ip', '-6', 'route', 'add', 'default', 'via', SERVER[6]]);
      const entry = (name: string, port: number, backends: { 4: string; 6: string }, echo = ECHO): string[] => [
        `  - name: ${name}`,
        '    protocol: udp',
        `    listen: ["${LISTEN[4]}:${port}", "[${LISTEN[6]}]:${port}"]`,
        `    allowedSources: [${LAB_ADDRESSES.client.ipv4}/32, "${LAB_ADDRESSES.client.ipv6}/128"]`,
        `    backend4: "${backends[4]}:${echo}"`,
        `    backend6: "[${backends[6]}]:${echo}"`,
        '    maxSessions: 64',
      ];
      writeFileSync(
        path.join(dir, 'tproxy.yaml'),
        [`admin: {socket: ${socket()}}`, 'mmproxy:', ...entry('local', PORTS.local, LOOPBACK), ...entry('remote', PORTS.remote, SERVER), ...entry('wild', WILD_PORT, LOOPBACK, WILD_ECHO)].join('\n') + '\n',
      );
      daemon = lab.spawn('router', [process.execPath, BIN, 'run', '--config', path.join(dir, 'tproxy.yaml'), '--log-format', 'json', '--log-level', 'debug']);
      daemonLog = new JsonLines<Line>(daemon.child.stderr!);
      await daemonLog.waitFor((l) => l.type === 'ready', 15_000, 'tproxy run ready');
    } catch (error) {
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  });
  after(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Send the datagrams (hex) from one socket of the client namespace to `port` of the router; the replies. */
  const send = async (family: 4 | 6, port: number, expected: number, hex: string[]): Promise<string[]> => {
    const sender = lab.spawn('client', [process.execPath, UDP_PEERS, 'send', LISTEN[family], String(port), String(expected), ...hex]);
    const out = await new JsonLines<{ replies: string[] }>(sender.child.stdout!).waitFor(() => true, 15_000, 'the sender');
    await sender.exited;
    return out.replies;
  };
  const status = async (): Promise<string> => (await lab.run('router', [process.execPath, BIN, 'status', '--socket', socket()])).stdout;

  it('applies the reply routing only: the loopback rules and the UDP divert, no tproxy interception', async () => {
    const applied = await daemonLog.waitFor((l) => l.type === 'rules.applied', 5000, 'rules applied');
    assert.equal(applied.listeners, 0);
    assert.match((await lab.run('router', ['ip', '-4', 'rule'])).stdout, /^\d+:\s+from 127\.0\.0\.0\/8 iif lo lookup 100/m);
    assert.match((await lab.run('router', ['ip', '-6', 'rule'])).stdout, /^\d+:\s+from ::1 iif lo lookup 100/m);
    const table = (await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_rules'])).stdout;
    assert.match(table, /comment "tproxy: divert udp ipv4"/, table);
    assert.match(table, /comment "tproxy: divert udp ipv6"/, table);
    assert.doesNotMatch(table, /tproxy (ip6? )?to|comment "tproxy: intercept/, table);
    const text = await status();
    assert.match(text, new RegExp(`^mmproxy local: udp ${LISTEN[4].replace(/\./g, '\\.')}:${PORTS.local}, \\[${LISTEN[6]}\\]:${PORTS.local} \\(PROXY v2 per datagram\\)`, 'm'), text);
  });

  for (const family of [4, 6] as const) {
    it(`IPv${family}: two clients to a loopback backend and to one on another host: each echo sees the client, every reply reaches the balancer`, async () => {
      const [a, b] = CLIENTS[family];
      // The header's destination is the balancer's (this listener): the entries' fixed backends apply.
      const to = (port: number): Endpoint => ep(LISTEN[family], port);
      for (const [name, port] of Object.entries(PORTS)) {
        const hex = [
          datagram(ep(a, 41_001), to(port), `a-${name}`),
          datagram(ep(b, 41_002), to(port), `b-${name}`),
          // The same flow again goes through its session.
          datagram(ep(a, 41_001), to(port), `a-${name}-again`),
        ];
        const replies = await send(family, port, 3, hex);
        assert.deepEqual(
          [...replies].sort(),
          [`${a}:41001|a-${name}`, `${a}:41001|a-${name}-again`, `${b}:41002|b-${name}`].sort(),
          `the ${name} echo saw each client's own address and port, and every reply came back without a header (status: ${await status()})`,
        );
      }
    });
  }

  it('counts the headers and the sessions in its status', async () => {
    const text = await until(status, (s) => /^mmproxy remote: udp /m.test(s), 5000, 'the status');
    for (const name of Object.keys(PORTS)) {
      const lines = text.split('\n');
      const at = lines.findIndex((l) => l.startsWith(`mmproxy ${name}: udp `));
      const block = lines.slice(at, at + 3).join('\n');
      // 3 datagrams per family; 2 sessions per family (one per client).
      assert.match(block, /headers: 6 proxy, 0 local; refused: none/, text);
      assert.match(block, /sessions: 4 open/, text);
    }
  });

  it('reports each session opened (debug): the entry, the balancer, the client the header named, its destination and the backend', () => {
    const opens = daemonLog.items.filter((l) => l.type === 'mmproxy.udp.open');
    const seen = opens.map((l) => `${l.listener} ${l.client?.address}:${l.client?.port} -> ${l.originalDestination?.address}:${l.originalDestination?.port} via ${l.balancer?.address} to ${l.backend?.address}:${l.backend?.port}`).sort();
    const expected = ([4, 6] as const).flatMap((family) =>
      Object.entries(PORTS).flatMap(([name, port]) => CLIENTS[family].map((c, i) => `${name} ${c}:${41_001 + i} -> ${LISTEN[family]}:${port} via ${family === 4 ? LAB_ADDRESSES.client.ipv4 : LAB_ADDRESSES.client.ipv6} to ${name === 'local' ? LOOPBACK[family] : SERVER[family]}:${ECHO}`)),
    );
    assert.deepEqual(seen, expected.sort(), 'one open per session (a flow\'s second datagram opens none)');
    assert.equal(new Set(opens.map((l) => l.id)).size, opens.length, 'session ids unique in the daemon');
  });

  it('a loopback backend bound to the wildcard address gets the datagrams, but its answers never come back', async () => {
    const results = await Promise.all(
      ([4, 6] as const).map(async (family) => {
        const client = ep(CLIENTS[family][0], 41_003);
        const seen = wildEcho.waitFor((l) => l.type === 'seen' && l.from === `${client.address}:${client.port}`, 15_000, `the wildcard echo seeing the IPv${family} client`);
        // One reply asked for: the sender waits its 10 s for it.
        const replies = await send(family, WILD_PORT, 1, [datagram(client, ep(LISTEN[family], WILD_PORT), 'wild')]);
        await seen;
        return replies;
      }),
    );
    assert.deepEqual(results, [[], []], 'the answers left by the default route (from the router\'s address, not loopback) instead of coming back');
    assert.equal(wildEcho.find((l) => l.type === 'send-error'), undefined, 'the echo sent its answers (they went the wrong way)');
  });

  it('tproxy doctor follows each reply datagram, and warns about the wildcard-bound loopback backend only', async () => {
    const r = await lab.run('router', [process.execPath, BIN, 'doctor', '--json', '--config', path.join(dir, 'tproxy.yaml')], { check: false, timeoutMs: 60_000 });
    const report = JSON.parse(r.stdout) as { findings: { id: string; severity: string; seen: string; why: string }[] };
    const mm = report.findings.filter((f) => f.id.startsWith('mmproxy.'));
    const expected = ['local', 'remote', 'wild'].flatMap((name) => [`mmproxy.reply.${name}.ipv4 pass`, `mmproxy.reply.${name}.ipv6 pass`]);
    assert.deepEqual(mm.map((f) => `${f.id} ${f.severity}`).sort(), [...expected, 'mmproxy.backend-bind.wild.ipv4 warn', 'mmproxy.backend-bind.wild.ipv6 warn'].sort(), JSON.stringify(mm, null, 2));
    assert.match(mm.find((f) => f.id === 'mmproxy.reply.remote.ipv4')!.seen, /its reply datagram to 198\.51\.100\.123:40000 reaches udp established/);
    assert.match(mm.find((f) => f.id === 'mmproxy.backend-bind.wild.ipv4')!.seen, new RegExp(`backend 127\\.0\\.0\\.1:${WILD_ECHO}: its datagrams reach udp unconnected 0\\.0\\.0\\.0:${WILD_ECHO}`));
    assert.match(mm.find((f) => f.id === 'mmproxy.backend-bind.wild.ipv6')!.why, new RegExp(`Bind the backend to \\[::1\\]:${WILD_ECHO}`));
  });

  it('tproxy explain --mmproxy follows a reply datagram on this host: the loopback rule, or the UDP divert and the fwmark rule', async () => {
    const explain = async (name: string, client: string): Promise<string> => (await lab.run('router', [process.execPath, BIN, 'explain', '--config', path.join(dir, 'tproxy.yaml'), '--mmproxy', name, client])).stdout;
    const local = await explain('local', `${CLIENTS[4][0]}:40000`);
    assert.match(local, /its reply datagram to 192\.0\.2\.30:40000 reaches udp established 192\.0\.2\.30:40000 peer 127\.0\.0\.1:7007 transparent/, local);
    assert.match(local, /^brought back by: ip rule \d+: from 127\.0\.0\.0\/8 iif lo lookup 100 -> local default dev lo table 100/m, local);
    const remote = await explain('remote', `[${CLIENTS[6][0]}]:40000`);
    assert.match(remote, /^brought back by: ip rule \d+: from all fwmark 0x1\/0x1 lookup 100 -> local default dev lo table 100, arriving on \S+ with mark 0x1/m, remote);
    assert.match(remote, /divert udp ipv6/, remote);
  });

  it('removes every rule it made when it stops (SIGTERM)', async () => {
    daemon.child.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    // Every session ended with the daemon, each reported with what it carried (debug).
    const closes = daemonLog.items.filter((l) => l.type === 'mmproxy.udp.close');
    const opens = daemonLog.items.filter((l) => l.type === 'mmproxy.udp.open');
    assert.deepEqual(closes.map((l) => l.id).sort(), opens.map((l) => l.id).sort(), 'a close for every open');
    assert.ok(closes.every((l) => l.reason === 'stopped'), JSON.stringify(closes));
    for (const family of [4, 6] as const) {
      for (const name of Object.keys(PORTS)) {
        const [a, b] = CLIENTS[family];
        const of = (client: string): Line | undefined => closes.find((l) => l.listener === name && l.client?.address === client);
        // Client a sent `a-NAME` and `a-NAME-again`, b `b-NAME`; the echo answered each with `CLIENT:PORT|PAYLOAD`.
        const reply = (client: string, port: number, payload: string): number => `${client}:${port}|${payload}`.length;
        assert.deepEqual(
          [of(a), of(b)].map((l) => [l?.datagramsFromClient, l?.datagramsFromBackend, l?.bytesFromClient, l?.bytesFromBackend]),
          [
            [2, 2, `a-${name}`.length + `a-${name}-again`.length, reply(a, 41_001, `a-${name}`) + reply(a, 41_001, `a-${name}-again`)],
            [1, 1, `b-${name}`.length, reply(b, 41_002, `b-${name}`)],
          ],
          `IPv${family} ${name}: ${JSON.stringify(closes.filter((l) => l.listener === name))}`,
        );
      }
    }
    // The wildcard-bound backend got the datagrams; its answers went elsewhere, none came through the sessions.
    assert.deepEqual(closes.filter((l) => l.listener === 'wild').map((l) => [l.datagramsFromClient, l.datagramsFromBackend]), [[1, 0], [1, 0]]);
    for (const family of ['-4', '-6']) {
      const rules = (await lab.run('router', ['ip', family, 'rule'])).stdout;
      assert.doesNotMatch(rules, new RegExp(`iif lo|fwmark|lookup ${ROUTE_TABLE}`), rules);
      const routes = await lab.run('router', ['ip', family, 'route', 'show', 'table', String(ROUTE_TABLE)], { check: false });
      assert.equal(routes.stdout.trim(), '', `the route table ${ROUTE_TABLE} is empty (IPv${family.slice(1)})`);
    }
    assert.notEqual((await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_rules'], { check: false })).exitCode, 0, 'the nft table is gone');
    const sockets = (await lab.run('router', ['ss', '-Hunl'])).stdout;
    for (const port of [...Object.values(PORTS), WILD_PORT]) assert.doesNotMatch(sockets, new RegExp(`:${port}\\s`), sockets);
  });
});

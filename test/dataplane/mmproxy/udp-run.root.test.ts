// UDP mmproxy through `tproxy run` with a configuration file (issue 16), as an operator replacing
// go-mmproxy runs it: two `protocol: udp` entries and no `listeners:`, one with its backends on the
// router's loopback, one with its backends on the server (another host). A sender written for the
// test plays the balancer (client namespace) and sends PROXY v2 DGRAM headers plus payload for two
// clients, IPv4 and IPv6; the echo backends answer with the source they saw. Each echo sees the
// client's own address and port, every reply reaches the balancer without a header, the daemon's
// status counts the headers and sessions, and at SIGTERM every rule the daemon made is gone.
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
const ECHO = 7007;
const ROUTE_TABLE = 100;

type Line = { type: string; listeners?: number };

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
      const entry = (name: keyof typeof PORTS, backends: { 4: string; 6: string }): string[] => [
        `  - name: ${name}`,
        '    protocol: udp',
        `    listen: ["${LISTEN[4]}:${PORTS[name]}", "[${LISTEN[6]}]:${PORTS[name]}"]`,
        `    allowedSources: [${LAB_ADDRESSES.client.ipv4}/32, "${LAB_ADDRESSES.client.ipv6}/128"]`,
        `    backend4: "${backends[4]}:${ECHO}"`,
        `    backend6: "[${backends[6]}]:${ECHO}"`,
        '    maxSessions: 64',
      ];
      writeFileSync(
        path.join(dir, 'tproxy.yaml'),
        [`admin: {socket: ${socket()}}`, 'mmproxy:', ...entry('local', LOOPBACK), ...entry('remote', SERVER)].join('\n') + '\n',
      );
      daemon = lab.spawn('router', [process.execPath, BIN, 'run', '--config', path.join(dir, 'tproxy.yaml'), '--log-format', 'json']);
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

  it('removes every rule it made when it stops (SIGTERM)', async () => {
    daemon.child.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    for (const family of ['-4', '-6']) {
      const rules = (await lab.run('router', ['ip', family, 'rule'])).stdout;
      assert.doesNotMatch(rules, new RegExp(`iif lo|fwmark|lookup ${ROUTE_TABLE}`), rules);
      const routes = await lab.run('router', ['ip', family, 'route', 'show', 'table', String(ROUTE_TABLE)], { check: false });
      assert.equal(routes.stdout.trim(), '', `the route table ${ROUTE_TABLE} is empty (IPv${family.slice(1)})`);
    }
    assert.notEqual((await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_rules'], { check: false })).exitCode, 0, 'the nft table is gone');
    const sockets = (await lab.run('router', ['ss', '-Hunl'])).stdout;
    for (const port of Object.values(PORTS)) assert.doesNotMatch(sockets, new RegExp(`:${port}\\s`), sockets);
  });
});

// Outbounds against real servers from Debian packages, through real kernel rules: Dante's danted as
// the socks5 outbound (without and with RFC 1929 username/password), tinyproxy as the http (CONNECT)
// outbound with Basic credentials, nginx behind `listen ... proxy_protocol` reading the PROXY v1
// and v2 headers tproxy sends (and HAProxy's `bind ... accept-proxy`), and name routes that send real curl requests (TLS SNI through
// --resolve, HTTP Host) to different outbounds. Each proxy's own log shows the original destination,
// so the flow went through it, not around it. The same servers, started once, listen on IPv4 and
// IPv6: each case runs again toward the server's IPv6 address (the proxies are still reached over
// IPv4, and are asked for an IPv6 destination; PROXY headers carry the client's IPv6 address).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import type { Daemon } from '../../helpers/daemon.js';
import { waitForLog } from '../../helpers/daemon.js';
import { startDante } from '../../helpers/dante.js';
import { startHaproxyAcceptProxy } from '../../helpers/haproxy.js';
import { startNginx } from '../../helpers/nginx.js';
import { startProxyLab, type LogLine, type ProxyLab } from '../../helpers/proxy-lab.js';
import { startTinyproxy } from '../../helpers/tinyproxy.js';

const SERVER = LAB_ADDRESSES.server.ipv4;
const CLIENT = LAB_ADDRESSES.client.ipv4;
const SERVER6 = LAB_ADDRESSES.server.ipv6;
const CLIENT6 = LAB_ADDRESSES.client.ipv6;
const PORTS = { plain: 84, proxy: 85, tls: 86 } as const;
const HAPROXY_PORT = 87;
const SOCKS = 1080;
const SOCKS_AUTH = 1081;
const HTTP_PROXY = 3128;
// Throwaway credentials of servers that live only in the test's namespace.
const SOCKS_USER = { name: 'tpxsocks', password: 'socks-pw-1' };
const HTTP_USER = { name: 'tpxhttp', password: 'http-pw-1' };

const config = (engine: string): string => `listeners:
  - name: main
    port: 8000
    intercept: ["tcp:84-87"]
    sniffTimeoutMs: 2000
routes:
  - { name: via-socks, outbound: socks, names: [socks.example, tls.example] }
  - { name: via-socks-auth, outbound: socks-auth, names: [auth.example] }
  - { name: via-http, outbound: http, names: [http.example] }
  - { name: pp1, outbound: pp1, names: [v1.example, v1h.example] }
  - { name: pp2, outbound: pp2, names: [v2.example, v2h.example] }
outbounds:
  - { name: socks, kind: socks5, url: "socks5://${SERVER}:${SOCKS}" }
  - { name: socks-auth, kind: socks5, url: "socks5://${SOCKS_USER.name}:${SOCKS_USER.password}@${SERVER}:${SOCKS_AUTH}" }
  - { name: http, kind: http, url: "http://${HTTP_USER.name}:${HTTP_USER.password}@${SERVER}:${HTTP_PROXY}" }
  - { name: pp1, kind: direct, proxyProtocol: v1 }
  - { name: pp2, kind: direct, proxyProtocol: v2 }
rules:
  table: tproxy_outreal
tcp:
  engine: ${engine}
  workers: 1
`;

// Each case on the splice and the uring engine.
for (const engine of ['splice', 'uring'] as const) {
  describe(`outbounds through real danted, tinyproxy, nginx and haproxy (${engine} engine) (root)`, () => {
    let p: ProxyLab;
    let dir: string;
    let socks: Daemon;
    let socksAuth: Daemon;
    let http: Daemon;
    let nginx: Daemon;
    let haproxy: Daemon;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tproxy-outreal-'));
      writeFileSync(join(dir, 'tproxy.yaml'), config(engine));
      p = await startProxyLab(['--config', join(dir, 'tproxy.yaml')]);
      try {
        [socks, socksAuth, http, nginx, haproxy] = await Promise.all([
          startDante(p.lab, 'server', dir, { address: [SERVER, SERVER6], port: SOCKS }),
          startDante(p.lab, 'server', dir, { address: [SERVER, SERVER6], port: SOCKS_AUTH, user: SOCKS_USER }),
          startTinyproxy(p.lab, 'server', dir, { address: SERVER, port: HTTP_PROXY, connectPorts: [PORTS.plain, PORTS.tls], user: HTTP_USER }),
          startNginx(p.lab, 'server', dir, [SERVER, SERVER6], PORTS),
          startHaproxyAcceptProxy(p.lab, 'server', dir, [SERVER, SERVER6], HAPROXY_PORT),
        ]);
      } catch (error) {
        await p.lab.destroy();
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    });
    after(async () => {
      await p.lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    if (engine === 'uring') {
      it('runs the uring engine, not its splice fallback', async () => {
        const line = await p.logs.waitFor((l) => l.type === 'tcp.engine', 5000, 'the tcp.engine line');
        assert.equal(line.engine, 'uring', JSON.stringify(line));
      });
    }

    const curl = async (args: readonly string[]): Promise<string> => (await p.lab.run('client', ['curl', '-sS', '-m', '20', ...args], { timeoutMs: 30_000 })).stdout;
    const routeOf = (name: string): Promise<LogLine> => p.logs.waitFor((l) => l.type === 'tcp.route' && l.name === name, 10_000, `the route of the flow named ${name}`);
    const DEST = (port: number, server: string = SERVER): RegExp => new RegExp(`${server.replaceAll('.', '\\.')}\\.${port}\\b`);

    it('socks5 outbound without authentication: danted connects to the original destination', async () => {
      assert.equal(await curl(['-H', 'Host: socks.example', `http://${SERVER}:${PORTS.plain}/`]), `${PORTS.plain} socks.example\n`);
      const route = await routeOf('socks.example');
      assert.deepEqual([route.route, route.outbound], ['via-socks', 'socks']);
      await waitForLog(socks, DEST(PORTS.plain));
    });

    it('socks5 outbound with RFC 1929 username/password: danted authenticates the user', async () => {
      assert.equal(await curl(['-H', 'Host: auth.example', `http://${SERVER}:${PORTS.plain}/`]), `${PORTS.plain} auth.example\n`);
      const route = await routeOf('auth.example');
      assert.deepEqual([route.route, route.outbound], ['via-socks-auth', 'socks-auth']);
      const log = await waitForLog(socksAuth, DEST(PORTS.plain));
      assert.match(log, new RegExp(`username%${SOCKS_USER.name}@`));
      assert.ok(!log.includes(SOCKS_USER.password));
      // The same danted refuses a wrong password (asked directly, not through tproxy): the check is real.
      const wrong = await p.lab.run('client', ['curl', '-sS', '-m', '10', '--socks5', `${SERVER}:${SOCKS_AUTH}`, '--proxy-user', `${SOCKS_USER.name}:wrong`, `http://${SERVER}:${PORTS.plain}/`], { check: false });
      assert.notEqual(wrong.exitCode, 0);
    });

    it('http outbound: tinyproxy checks the Basic credentials and CONNECTs to the original destination', async () => {
      assert.equal(await curl(['-H', 'Host: http.example', `http://${SERVER}:${PORTS.plain}/`]), `${PORTS.plain} http.example\n`);
      const route = await routeOf('http.example');
      assert.deepEqual([route.route, route.outbound], ['via-http', 'http']);
      await waitForLog(http, new RegExp(`CONNECT ${SERVER.replaceAll('.', '\\.')}:${PORTS.plain}`));
      // The same tinyproxy answers 407 to a CONNECT without credentials: BasicAuth covers CONNECT.
      const anonymous = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-p', '-x', `http://${SERVER}:${HTTP_PROXY}`, `http://${SERVER}:${PORTS.plain}/`]).catch((e: Error) => e.message);
      assert.match(anonymous, /407/);
    });

    it('a TLS name route: curl --resolve sends SNI tls.example, the flow goes through danted to nginx', async () => {
      assert.equal(await curl(['-k', '--resolve', `tls.example:${PORTS.tls}:${SERVER}`, `https://tls.example:${PORTS.tls}/`]), 'tls tls.example\n');
      const route = await routeOf('tls.example');
      assert.deepEqual([route.route, route.outbound], ['via-socks', 'socks']);
      await waitForLog(socks, DEST(PORTS.tls));
    });

    it('PROXY v1 and v2 out: nginx (listen ... proxy_protocol) logs the real client address and port', async () => {
      // The client's own ports are fixed, so the header's source port can be checked.
      const sent = [['v1.example', 40_001], ['v2.example', 40_002]] as const;
      for (const [name, port] of sent) {
        assert.equal(await curl(['--local-port', `${port}`, '-H', `Host: ${name}`, `http://${SERVER}:${PORTS.proxy}/`]), 'proxied\n');
      }
      const [v1, v2] = [await routeOf('v1.example'), await routeOf('v2.example')];
      assert.deepEqual([v1.outbound, v2.outbound], ['pp1', 'pp2']);
      const log = await waitForLog(nginx, /(?:.*\n){2}/);
      assert.deepEqual(log.trim().split('\n'), sent.map(([, port]) => `${CLIENT}:${port}`));
    });

    it('PROXY v1 and v2 out: HAProxy (bind ... accept-proxy) takes the real client address and port', async () => {
      const sent = [['v1h.example', 40_003], ['v2h.example', 40_004]] as const;
      for (const [name, port] of sent) {
        assert.equal(await curl(['--local-port', `${port}`, '-H', `Host: ${name}`, `http://${SERVER}:${HAPROXY_PORT}/`]), 'haproxy\n');
      }
      const [v1, v2] = [await routeOf('v1h.example'), await routeOf('v2h.example')];
      assert.deepEqual([v1.outbound, v2.outbound], ['pp1', 'pp2']);
      const log = await waitForLog(haproxy, /(?:.*\n){2}/);
      assert.deepEqual(log.trim().split('\n'), sent.map(([, port]) => `${CLIENT}:${port}`));
    });

    describe('IPv6 destinations, through the same servers', () => {
      const URL6 = (port: number, scheme = 'http'): string => `${scheme}://[${SERVER6}]:${port}/`;

      it('socks5 outbounds, without and with username/password: danted connects to the IPv6 destination', async () => {
        assert.equal(await curl(['-H', 'Host: socks.example', URL6(PORTS.plain)]), `${PORTS.plain} socks.example\n`);
        assert.equal(await curl(['-H', 'Host: auth.example', URL6(PORTS.plain)]), `${PORTS.plain} auth.example\n`);
        await waitForLog(socks, DEST(PORTS.plain, SERVER6));
        const log = await waitForLog(socksAuth, DEST(PORTS.plain, SERVER6));
        assert.match(log, new RegExp(`username%${SOCKS_USER.name}@`));
      });

      it('http outbound: tinyproxy CONNECTs to the IPv6 destination', async () => {
        const before = http.log().length;
        assert.equal(await curl(['-H', 'Host: http.example', URL6(PORTS.plain)]), `${PORTS.plain} http.example\n`);
        await waitForLog(http, /CONNECT/);
        assert.match(http.log().slice(before), new RegExp(`CONNECT \\[?${SERVER6}\\]?:${PORTS.plain}`));
      });

      it('TLS name routes: curl --resolve and openssl s_client -servername to the IPv6 address, through danted to nginx', async () => {
        assert.equal(await curl(['-k', '--resolve', `tls.example:${PORTS.tls}:[${SERVER6}]`, `https://tls.example:${PORTS.tls}/`]), 'tls tls.example\n');
        const script = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | openssl s_client -quiet -connect '[${SERVER6}]:${PORTS.tls}' -servername tls.example 2>/dev/null`;
        const openssl = await p.lab.run('client', ['timeout', '20', 'sh', '-c', script], { check: false, timeoutMs: 30_000 });
        assert.match(openssl.stdout, /tls tls\.example\n$/, openssl.stderr);
        const routes = p.logs.items.filter((l) => l.type === 'tcp.route' && l.name === 'tls.example' && (l.originalDestination as { address?: string } | undefined)?.address === SERVER6);
        assert.deepEqual(routes.map((l) => l.outbound), ['socks', 'socks'], 'both clients named tls.example and went through danted');
        await waitForLog(socks, DEST(PORTS.tls, SERVER6));
      });

      it('PROXY v1 and v2 out to nginx and HAProxy: the real client IPv6 address and port', async () => {
        for (const [daemon, port, names, ports] of [
          [nginx, PORTS.proxy, ['v1.example', 'v2.example'], [40_011, 40_012]],
          [haproxy, HAPROXY_PORT, ['v1h.example', 'v2h.example'], [40_013, 40_014]],
        ] as const) {
          for (const [i, name] of names.entries()) {
            assert.equal(await curl(['--local-port', `${ports[i]}`, '-H', `Host: ${name}`, URL6(port)]), daemon === nginx ? 'proxied\n' : 'haproxy\n');
          }
          const log = await waitForLog(daemon, new RegExp(`^${CLIENT6}:${ports[1]}$`, 'm'));
          assert.deepEqual(log.trim().split('\n').filter((line) => line.startsWith(`${CLIENT6}:`)), ports.map((clientPort) => `${CLIENT6}:${clientPort}`));
        }
      });
    });
  });
}

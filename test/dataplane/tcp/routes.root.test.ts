// Routes through real kernel rules, each engine (splice, uring, stream): a destination route rejects (reset) while the
// default goes direct; name routes see the name real clients asked for (curl's Host header and TLS
// SNI), peeked without losing a byte; a server that speaks first still completes, delayed by the
// sniff timeout only; every flow's route and outbound are in its log lines and the counters.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { treeCpuMs } from '../../helpers/process-cpu.js';
import { startProxyLab, type LogLine, type ProxyLab } from '../../helpers/proxy-lab.js';

const SERVER = { 4: LAB_ADDRESSES.server.ipv4, 6: LAB_ADDRESSES.server.ipv6 } as const;
const BANNER_PORT = 84;
const PP_PORT = 83;
// Answers with the first bytes it receives: the PROXY header, when one came first.
const FIRST_BYTES_SERVER = `require('node:net').createServer((s) => s.once('data', (d) => s.end(d))).listen(${PP_PORT}, () => console.log('ready'));`;
const FIRST_BYTES_CLIENT = `const s = require('node:net').connect(${PP_PORT}, '203.0.113.20', () => s.write('hi\\n')); let all = ''; s.on('data', (d) => { all += d; }); s.on('end', () => console.log(JSON.stringify(all)));`;

const config = (engine: string): string => `listeners:
  - name: main
    port: 8000
    intercept: ["tcp:81-84"]
    sniffTimeoutMs: 1500
routes:
  - name: v6-blocked
    outbound: reject
    destinations: ["${SERVER[6]}"]
  - name: names-blocked
    outbound: reject
    nameLists: [blocked]
  - name: pp
    outbound: pp
    ports: [${PP_PORT}]
outbounds:
  - { name: pp, kind: direct, proxyProtocol: v1 }
lists:
  - name: blocked
    kind: names
    file: blocked.txt
rules:
  table: tproxy_routes
tcp:
  engine: ${engine}
  workers: 1
`;

// Sends the first 9 bytes of a TLS ClientHello (a record of 512 bytes announced) and waits 2 s:
// the sniffer needs more than the socket holds until the sniff timeout ends the wait.
const PARTIAL_HELLO_CLIENT = `const s = require('node:net').connect(81, '${SERVER[4]}', () => s.write(Buffer.from('160301020001000200', 'hex'))); s.on('error', () => {}); setTimeout(() => { s.destroy(); console.log('"done"'); }, 2000);`;

// A server that speaks first (a banner, like SMTP or SSH), then echoes one line.
const BANNER_SERVER = `require('node:net').createServer((s) => { s.write('220 banner\\n'); s.once('data', (d) => s.end('got ' + d)); }).listen(${BANNER_PORT}, () => console.log('ready'));`;
// Waits for the banner before it sends anything.
const BANNER_CLIENT = `const s = require('node:net').connect(${BANNER_PORT}, '${SERVER[4]}'); let all = ''; s.on('data', (d) => { all += d; if (all.startsWith('220') && !s.sent) { s.sent = true; s.write('hello\\n'); } }); s.on('end', () => console.log(JSON.stringify(all))); s.on('error', (e) => console.log(JSON.stringify('error ' + e.code)));`;

for (const engine of ['splice', 'uring', 'stream'] as const) {
  describe(`routes and name sniffing (${engine} engine) (root)`, () => {
    let p: ProxyLab;
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tproxy-routes-'));
      writeFileSync(join(dir, 'blocked.txt'), '# names nobody may reach\nblocked.example\n*.ads.example\n');
      writeFileSync(join(dir, 'tproxy.yaml'), config(engine));
      p = await startProxyLab(['--config', join(dir, 'tproxy.yaml')]);
      try {
        for (const script of [BANNER_SERVER, FIRST_BYTES_SERVER]) {
          const server = p.lab.spawn('server', [process.execPath, '-e', script]);
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('test server not ready in 10 s')), 10_000);
            server.child.stdout?.once('data', () => {
              clearTimeout(timer);
              resolve();
            });
          });
        }
      } catch (error) {
        await p.lab.destroy();
        throw error;
      }
    });
    after(async () => {
      await p.lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    if (engine === 'uring') {
      it('runs the uring engine, not its splice fallback: names and PROXY headers are no gap', async () => {
        const line = await p.logs.waitFor((l) => l.type === 'tcp.engine', 5000, 'the tcp.engine line');
        assert.equal(line.engine, 'uring', JSON.stringify(line));
      });
    }

    /** The tcp.route line of a flow to `destination` with that name. */
    const routeOf = (name: string | undefined, destination: string): Promise<LogLine> =>
      p.logs.waitFor((l) => l.type === 'tcp.route' && l.name === name && (l.originalDestination as { address: string }).address === destination, 10_000, `the route of a flow to ${destination}${name ? ` named ${name}` : ''}`);

    it('the default route goes direct; bytes arrive intact though the flow was sniffed', async () => {
      const r = await p.client<{ how: string }>('peer', SERVER[4], 81);
      assert.equal(r.how, 'end');
      const route = await routeOf(undefined, SERVER[4]);
      assert.equal(route.outbound, 'direct');
      assert.equal(route.route, undefined);
    });

    it('a destination route rejects: the client is reset, the server never sees it', async () => {
      const r = await p.client<{ how: string }>('peer', SERVER[6], 81);
      assert.notEqual(r.how, 'end');
      const route = await routeOf(undefined, SERVER[6]);
      assert.deepEqual([route.route, route.outbound], ['v6-blocked', 'reject']);
      await p.logs.waitFor((l) => l.type === 'tcp.close' && l.route === 'v6-blocked' && l.reason === 'rejected', 5000, 'the rejected close');
    });

    it('a name route matches the HTTP Host a real client sent; other names go their way', async () => {
      const blocked = await p.lab.run('client', ['curl', '-sS', '-m', '10', '-H', 'Host: x.ads.example', `http://${SERVER[4]}:81/`], { check: false });
      assert.notEqual(blocked.exitCode, 0);
      const route = await routeOf('x.ads.example', SERVER[4]);
      assert.deepEqual([route.route, route.outbound], ['names-blocked', 'reject']);
      await p.lab.run('client', ['curl', '-sS', '-m', '5', '-H', 'Host: fine.example', `http://${SERVER[4]}:81/`], { check: false });
      const fine = await routeOf('fine.example', SERVER[4]);
      assert.deepEqual([fine.route, fine.outbound], [undefined, 'direct']);
    });

    it('a name route matches the TLS SNI of curl --resolve', async () => {
      const r = await p.lab.run('client', ['curl', '-sS', '-k', '-m', '10', '--resolve', `blocked.example:82:${SERVER[4]}`, 'https://blocked.example:82/'], { check: false });
      assert.notEqual(r.exitCode, 0);
      const route = await routeOf('blocked.example', SERVER[4]);
      assert.deepEqual([route.route, route.outbound], ['names-blocked', 'reject']);
    });

    it('a server that speaks first completes: the sniff times out, then the flow goes its way', async () => {
      const r = await p.lab.run('client', [process.execPath, '-e', BANNER_CLIENT], { timeoutMs: 30_000 });
      assert.equal(JSON.parse(r.stdout.trim()), '220 banner\ngot hello\n');
    });

    it('a partial ClientHello waits for the rest without spinning: a peeked prefix is read again only when more bytes come', async () => {
      const cpuBefore = treeCpuMs(p.proxy.child.pid!);
      const r = await p.lab.run('client', [process.execPath, '-e', PARTIAL_HELLO_CLIENT], { timeoutMs: 30_000 });
      assert.equal(JSON.parse(r.stdout.trim()), 'done');
      // 1.5 s of sniff timeout on a readable socket: a level-triggered loop spins through all of it.
      const used = treeCpuMs(p.proxy.child.pid!) - cpuBefore;
      assert.ok(used < 500, `the proxy used ${used} ms of CPU while the ClientHello prefix waited`);
    });

    it('an outbound with proxyProtocol v1 sends the PROXY header naming the real client first', async () => {
      const r = await p.lab.run('client', [process.execPath, '-e', FIRST_BYTES_CLIENT], { timeoutMs: 30_000 });
      assert.match(JSON.parse(r.stdout.trim()) as string, new RegExp(`^PROXY TCP4 ${LAB_ADDRESSES.client.ipv4.replaceAll('.', '\\.')} ${SERVER[4].replaceAll('.', '\\.')} \\d+ ${PP_PORT}\r\n`));
      const route = await routeOf(undefined, SERVER[4]);
      assert.ok(route);
    });

    it('counts flows and bytes per route and outbound, and sniffs by outcome', async () => {
      p.proxy.child.kill('SIGTERM');
      const stopped = await p.logs.waitFor((l) => l.type === 'stopped', 30_000, 'the stopped line');
      const tcp = (stopped.counters as { tcp: { routes: Record<string, { flows: number }>; outbounds: Record<string, { flows: number; bytesFromServer: number }>; sniffs: Record<string, number> } }).tcp;
      assert.ok((tcp.routes['v6-blocked']?.flows ?? 0) >= 1);
      assert.ok((tcp.routes['names-blocked']?.flows ?? 0) >= 2);
      assert.ok((tcp.outbounds.direct?.flows ?? 0) >= 3);
      assert.ok((tcp.outbounds.direct?.bytesFromServer ?? 0) > 0);
      assert.ok((tcp.sniffs.http ?? 0) >= 2 && (tcp.sniffs.tls ?? 0) >= 1 && (tcp.sniffs.timeout ?? 0) >= 1, JSON.stringify(tcp.sniffs));
    });
  });
}

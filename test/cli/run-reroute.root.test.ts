// A reload that moves a destination from outbound a (direct: the server sees the router) to outbound
// b (transparent: the server sees the client), with a TCP flow and a UDP session to it in progress,
// in a lab router namespace, for both TCP engines: the flow and the session keep outbound a (bytes
// go on both ways, the same connection and the same upstream port, their counters go on), new ones
// take b, nothing is restarted. Then a reload whose prefix list file has a bad line changes nothing
// and names the file and line.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EchoReply } from '../../src/lab/agent.js';
import { LAB_ADDRESSES as A, Lab, type SpawnedProcess } from '../../src/lab/topology.js';
import { JsonLines } from '../../src/lab/json-lines.js';
import type { DaemonStatus } from '../../src/daemon/admin-protocol.js';
import { cli } from '../helpers/cli.js';
import { type ProbeResult, type ProxyLine, startProxy } from '../helpers/lab-flows.js';
import { AGENT, TCP_PEER } from '../helpers/paths.js';
import { spawnAgent } from '../helpers/udp-lab.js';
import { until } from '../helpers/until.js';

/** Pieces of 1 KiB, 50 ms apart: a transfer of about 15 s, in progress across the reloads. */
const PIECES = 300;

type Line = ProxyLine & { error?: string; kept?: string[]; changed?: string[]; routingSwitched?: string[]; outbound?: string; route?: string; reason?: string; id?: number };

interface TrickleResult {
  how: string;
  receivedBytes: number;
  sentSha256: string;
  receivedSha256: string;
}

const ENGINES = [
  { name: 'splice engine in a worker process', tcp: 'tcp: { workers: 1, engine: splice }' },
  { name: 'stream engine in the daemon', tcp: 'tcp: { workers: 0, engine: stream }' },
] as const;

describe('tproxy run: a reload moves routes, flows in progress keep their outbound (root)', () => {
  let lab: Lab;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-reroute-'));
    lab = await Lab.create();
    const server = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', '80']);
    await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'echo server on 80 ready');
    const peer = lab.spawn('server', [process.execPath, TCP_PEER, 'server', '--port', '81']);
    await new JsonLines<{ event: string }>(peer.child.stdout!).waitFor((l) => l.event === 'ready', 30_000, 'tcp peer on 81 ready');
  });
  after(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [n, engine] of ENGINES.entries()) {
    it(`${engine.name}: the TCP flow and the UDP session stay on a, new flows take b; a bad list file changes nothing`, async () => {
      const socket = join(dir, `admin-${n}.sock`);
      const nets = join(dir, `nets-${n}.txt`);
      const file = join(dir, `reroute-${n}.yaml`);
      writeFileSync(nets, `# the lab's server\n${A.server.ipv4}/32\n${A.server.ipv6}/128\n`);
      const configFor = (outbound: 'a' | 'b'): string => `listeners:
  - { name: web, port: 8300, intercept: [tcp:80, tcp:81, udp:80] }
outbounds:
  - { name: a, kind: direct }
  - { name: b, kind: transparent }
lists:
  - { name: lab-nets, kind: prefixes, file: ${nets} }
routes:
  - { name: lab, outbound: ${outbound}, destinationLists: [lab-nets] }
rules: { table: tproxy_reroute, routeTable: 133, rulePriority: 9133 }
admin: { socket: ${socket} }
${engine.tcp}
`;
      writeFileSync(file, configFor('a'));
      const { process: proxy, lines } = await startProxy(lab, ['--config', file]);
      const hup = async (what: 'reload.applied' | 'reload.rejected'): Promise<Line> => {
        const seen = lines.items.filter((l) => l.type === what).length;
        proxy.child.kill('SIGHUP');
        await lines.waitFor(() => lines.items.filter((l) => l.type === what).length > seen, 60_000, what);
        return lines.items.filter((l) => l.type === what).pop() as Line;
      };
      const status = async (): Promise<DaemonStatus> => {
        const r = await cli('status', '--socket', socket, '--json', '--top', '5');
        assert.equal(r.code, 0, r.err);
        return JSON.parse(r.out) as DaemonStatus;
      };
      const counters = async (): Promise<NonNullable<DaemonStatus['listeners'][number]>['counters']> => {
        const c = (await status()).listeners[0]?.counters;
        assert.ok(c?.udp);
        return c;
      };
      const probe = async (transport: 'tcp' | 'udp', address: string, message: string): Promise<ProbeResult> => {
        const r = await lab.run('client', [process.execPath, AGENT, 'probe', transport, address, '80', message, '--timeout-ms', '10000'], { check: false });
        return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as ProbeResult;
      };
      const workersStarted = (): number => lines.items.filter((l) => l.type === 'worker.start').length;

      // A UDP session through a: the server sees the router and the session's upstream port.
      const peer = spawnAgent<{ event: string; text?: string }>(lab, 'client', ['udp-peer']);
      let transfer: Promise<TrickleResult> | undefined;
      let spawnedPeer: SpawnedProcess | undefined = peer.proc;
      try {
        await peer.lines.waitFor((l) => l.event === 'ready', 5000, 'udp-peer ready');
        const echo = async (message: string): Promise<EchoReply> => {
          peer.send(`send ${A.server.ipv4} 80 ${message}`);
          const datagram = await peer.lines.waitFor((l) => l.event === 'datagram' && (JSON.parse(l.text ?? '{}') as EchoReply).message === message, 10_000, `the echo of ${message}`);
          return JSON.parse(datagram.text ?? '{}') as EchoReply;
        };
        const first = await echo('before the reload');
        assert.equal(first.seen.address, A.routerServerSide.ipv4, 'outbound a (direct) leaves from the router');

        // A TCP flow through a, moving bytes both ways across the reloads.
        transfer = lab.run('client', [process.execPath, TCP_PEER, 'client', 'trickle', A.server.ipv4, '81', `${PIECES}`], { timeoutMs: 90_000 }).then((r) => JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as TrickleResult);
        const routed = (await lines.waitFor((l: Line) => l.type === 'tcp.route' && l.originalDestination?.port === 81, 30_000, 'the transfer routed')) as Line;
        assert.deepEqual([routed.route, routed.outbound], ['lab', 'a']);
        const flowOf = (s: DaemonStatus): DaemonStatus['flows'][number] | undefined => s.flows.find((f) => f.originalDestination.port === 81);
        const flowBefore = flowOf(await until(status, (s) => (flowOf(s)?.bytesFromServer ?? 0) >= 4 * 1024, 30_000, 'the transfer moving'));
        assert.ok(flowBefore);
        const before = await counters();
        assert.deepEqual([before.tcp.outbounds['a']?.flows, before.udp?.outbounds['a']?.sessions, before.udp?.outbounds['a']?.datagramsFromClients], [1, 1, 1]);
        const started = workersStarted();

        // The reload: lab's destinations now leave through b.
        writeFileSync(file, configFor('b'));
        const applied = await hup('reload.applied');
        assert.deepEqual([applied.kept, applied.changed, applied.routingSwitched], [['web'], [], ['web']]);

        // The session in progress: the same upstream port, still through a, both ways.
        const later = await echo('after the reload');
        assert.deepEqual(later.seen, first.seen, 'the server sees the same router port: the session and its outbound kept');
        // The flow in progress: the same connection, moving on.
        const flowAfter = flowOf(await until(status, (s) => (flowOf(s)?.bytesFromServer ?? 0) > flowBefore.bytesFromServer + 2048, 30_000, 'the transfer moving after the reload'));
        assert.deepEqual([flowAfter?.client, flowAfter?.pid], [flowBefore.client, flowBefore.pid], 'the same connection in the same worker');

        // New flows to the same destination take b: the server sees the client.
        for (const transport of ['tcp', 'udp'] as const) {
          const line = await probe(transport, A.server.ipv4, `${transport} after the reload`);
          assert.equal(line.ok, true, line.reason);
          assert.equal(line.reply?.seen.address, A.client.ipv4, `a new ${transport} flow leaves through b (transparent)`);
        }
        // Their log lines may come after the replies: wait for them.
        await lines.waitFor((l: Line) => l.type === 'tcp.route' && l.originalDestination?.port === 80, 15_000, 'the new TCP flow routed');
        await lines.waitFor((l: Line) => l.type === 'udp.session.open' && l.outbound === 'b', 15_000, 'the new UDP session opened');
        const tcpRoutes = lines.items.filter((l: Line) => l.type === 'tcp.route' && l.originalDestination?.port === 80) as Line[];
        assert.deepEqual(tcpRoutes.map((l) => l.outbound), ['b']);
        const sessionsOpened = lines.items.filter((l: Line) => l.type === 'udp.session.open') as Line[];
        assert.deepEqual(sessionsOpened.map((l) => l.outbound), ['a', 'b'], 'one session through a, opened before the reload, one through b after');

        // A list file with a bad line: refused at its file and line, nothing changes.
        writeFileSync(nets, `# the lab's server\n${A.server.ipv4}/32\n203.0.113.300/32\n`);
        const rejected = await hup('reload.rejected');
        assert.match(rejected.error ?? '', new RegExp(`lists\\[0\\]\\.file: ${nets.replace(/[.]/g, '\\.')}:3: "203\\.0\\.113\\.300/32" is not an IPv4 or IPv6 address or prefix`));
        assert.equal((await probe('tcp', A.server.ipv4, 'after the refused reload')).reply?.seen.address, A.client.ipv4, 'new flows still take b');
        assert.deepEqual((await echo('after the refused reload')).seen, first.seen, 'the session still goes through a');

        const result = await transfer;
        assert.equal(result.how, 'end', 'the transfer ended cleanly');
        assert.equal(result.receivedBytes, PIECES * 1024);
        assert.equal(result.receivedSha256, result.sentSha256);
        const closed = (await lines.waitFor((l: Line) => l.type === 'tcp.close' && l.originalDestination?.port === 81, 30_000, 'the transfer closing')) as Line;
        assert.deepEqual([closed.reason, closed.outbound], ['done', 'a'], 'the transfer ended through a');

        // Counters went on: nothing was reset, the new outbound has its own.
        const end = await counters();
        assert.deepEqual([end.tcp.outbounds['a']?.flows, end.tcp.outbounds['b']?.flows], [1, 2]);
        assert.equal(end.tcp.outbounds['a']?.bytesFromServer, PIECES * 1024, 'every byte of the transfer counted under a');
        assert.deepEqual([end.udp?.sessionsCreated, end.udp?.outbounds['a']?.sessions, end.udp?.outbounds['a']?.datagramsFromClients, end.udp?.outbounds['a']?.datagramsFromServers], [2, 1, 3, 3]);
        assert.deepEqual([end.udp?.outbounds['b']?.sessions, end.udp?.routes['lab']?.sessions], [1, 2]);
        assert.equal(workersStarted(), started, 'no TCP worker was started again');
        assert.equal(lines.items.filter((l) => l.type === 'listener.draining').length, 0, 'no listener was stopped');
        peer.proc.child.stdin?.end();
        await peer.proc.exited;
        spawnedPeer = undefined;
      } finally {
        spawnedPeer?.child.kill('SIGKILL');
        await transfer?.catch(() => undefined);
        proxy.child.kill('SIGTERM');
        assert.equal(await proxy.exited, 0);
      }
      assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '', 'no table left');
    });
  }
});

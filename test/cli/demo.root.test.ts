// `tproxy demo` as a user runs it: success, not root, interrupted.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { namespacesWithPrefix } from '../../src/lab/topology.js';
import { BIN, isAlive } from '../helpers/paths.js';
import { unprivilegedCopy } from '../helpers/unprivileged.js';

interface DemoJson {
  ok: boolean;
  prefix: string;
  upstream: string;
  flows: { transport: string; family: number; client: { address: string }; originalDestination: { address: string; port: number }; serverSaw: { address: string }; replyFrom: { address: string; port: number } }[];
  ruleCounters: Record<string, number>;
  pids: { server: number; proxy: number };
}

describe('tproxy demo (root)', () => {
  it('relays TCP and UDP over IPv4 and IPv6 transparently, proves it, and leaves nothing behind', () => {
    const run = spawnSync(process.execPath, [BIN, 'demo', '--json'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout) as DemoJson;
    assert.equal(result.ok, true);
    assert.equal(result.upstream, 'transparent');
    assert.deepEqual(result.flows.map((f) => `${f.transport}/${f.family}`).sort(), ['tcp/4', 'tcp/6', 'udp/4', 'udp/6']);
    for (const flow of result.flows) {
      assert.equal(flow.originalDestination.address, flow.family === 4 ? '203.0.113.20' : '2001:db8:2::20');
      assert.equal(flow.originalDestination.port, 80);
      assert.deepEqual(flow.replyFrom, { address: flow.originalDestination.address, port: 80 }, 'reply from the original destination');
      assert.equal(flow.serverSaw.address, flow.client.address, 'transparent: the server sees the client');
    }
    for (const [rule, packets] of Object.entries(result.ruleCounters)) assert.ok(packets >= 1, `${rule} counted the flow`);
    assert.match(run.stderr, /\[4\/7\] rules applied/);
    assert.match(run.stderr, /cleanup: namespaces .* deleted/);
    return namespacesWithPrefix(result.prefix).then((left) => {
      assert.deepEqual(left, []);
      assert.equal(isAlive(result.pids.proxy), false);
      assert.equal(isAlive(result.pids.server), false);
    });
  });

  it('refuses to run without root and says what is missing', () => {
    const copy = unprivilegedCopy();
    const run = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, copy.bin, 'demo'], { encoding: 'utf8', timeout: 30_000 });
    copy.remove();
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /tproxy demo needs root: it creates network namespaces, nftables rules and IP_TRANSPARENT sockets .*\[ERR_PRIVILEGE\]/);
  });

  it('tears everything down when interrupted (SIGINT)', async () => {
    const child = spawn(process.execPath, [BIN, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const prefix = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no proxy step within 60 s: ${out}`)), 60_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (/\[3\/7\] proxy/.test(out)) {
          clearTimeout(timer);
          resolve(/namespaces (tpx\d+x[0-9a-f]+)-client/.exec(out)?.[1] ?? '');
        }
      });
    });
    assert.ok(prefix);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 130);
    assert.deepEqual(await namespacesWithPrefix(prefix), []);
  });
});

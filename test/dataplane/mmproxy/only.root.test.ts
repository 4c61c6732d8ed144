// `tproxy run` as a go-mmproxy replacement: a configuration with mmproxy entries and no
// `listeners:` at all. The daemon runs the mmproxy entries, applies only their reply routing (no
// tproxy interception rule), relays from the client's address named in the PROXY header to a
// backend on loopback (a TCP peer reporting the source it saw), and removes its rules at stop.
// A reload that removes the entry keeps the reply routing its flow in progress needs (the IPv4
// loopback rule, which the entry left is not asking for) until that flow ends. On each TCP engine.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { Lab, LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { BIN, HEADER_SENDER, PROXIED_CLIENT, TCP_PEER } from '../../helpers/paths.js';
import { until } from '../../helpers/until.js';

const CLIENT4 = LAB_ADDRESSES.client.ipv4;
const V2_SIGNATURE = '0d0a0d0a000d0a515549540a';

/** A PROXY v2 header (PROXY, TCP over IPv4) from `source`:`port` to 127.0.0.1:8080. */
export function v2Header4(source: string, port: number): string {
  const ip = (a: string): string => Buffer.from(a.split('.').map(Number)).toString('hex');
  const u16 = (n: number): string => n.toString(16).padStart(4, '0');
  return `${V2_SIGNATURE}2111000c${ip(source)}${ip('127.0.0.1')}${u16(port)}${u16(8080)}`;
}

type Line = { type: string; event?: string; listeners?: number };

for (const engine of ['splice', 'uring', 'stream'] as const) {
  describe(`tproxy run with mmproxy entries only, ${engine} engine (root)`, () => {
    let lab: Lab;
    let dir: string;
    let daemon: ReturnType<Lab['spawn']>;
    let daemonLog: JsonLines<Line>;
    const config = (): string => path.join(dir, 'tproxy.yaml');

    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'tproxy-mmproxy-only-'));
      lab = await Lab.create();
      try {
        const peer = lab.spawn('router', [process.execPath, TCP_PEER, 'server', '--port', '8080']);
        await new JsonLines<{ event: string }>(peer.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'the backend ready');
        writeFileSync(
          config(),
          [
            `admin: {socket: ${path.join(dir, 'admin.sock')}}`,
            'mmproxy:',
            '  - name: lb',
            '    listen: [127.0.0.1:8444]',
            '    backend4: 127.0.0.1:8080',
            '    backend6: "[::1]:8080"',
          ].join('\n') + '\n',
        );
        daemon = lab.spawn('router', [process.execPath, BIN, 'run', '--config', config(), '--tcp-engine', engine, '--log-format', 'json']);
        daemonLog = new JsonLines<Line>(daemon.child.stderr!);
        await daemonLog.waitFor((l) => l.type === 'ready', 15_000, 'tproxy run ready');
      } catch (error) {
        await lab.destroy();
        throw error;
      }
    });
    after(async () => {
      await lab?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('starts without a transparent listener, and is ready', async () => {
      const applied = await daemonLog.waitFor((l) => l.type === 'rules.applied', 5000, 'rules applied');
      assert.equal(applied.listeners, 0);
      const status = (await lab.run('router', [process.execPath, BIN, 'status', '--socket', path.join(dir, 'admin.sock')])).stdout;
      assert.match(status, /^mmproxy lb: tcp 127\.0\.0\.1:8444 /m);
      assert.doesNotMatch(status, /listeners: none yet/);
      // Ready: no transparent listener is needed when mmproxy listeners run.
      const ready = await lab.run('router', [process.execPath, BIN, 'status', '--ready', '--socket', path.join(dir, 'admin.sock')], { check: false });
      assert.equal(ready.exitCode, 0, ready.stdout + ready.stderr);
    });

    it('relays from the client\'s address the header names to the loopback backend', async () => {
      const r = await lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8444', `${v2Header4(CLIENT4, 40_001)}${Buffer.from('PEER\n').toString('hex')}`]);
      const out = JSON.parse(r.stdout.trim()) as { how: string; received: string };
      assert.equal(out.how, 'end');
      assert.match(out.received, new RegExp(`^(::ffff:)?${CLIENT4.replace(/\./g, '\\.')} 40001\\n$`));
    });

    it('applies the reply routing only: loopback rules, no tproxy interception', async () => {
      assert.match((await lab.run('router', ['ip', '-4', 'rule'])).stdout, /^9000:\s+from 127\.0\.0\.0\/8 iif lo lookup 100/m);
      assert.match((await lab.run('router', ['ip', '-6', 'rule'])).stdout, /^9000:\s+from ::1 iif lo lookup 100/m);
      const table = (await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_rules'])).stdout;
      assert.match(table, /comment "tproxy: divert tcp ipv4"/);
      assert.doesNotMatch(table, /tproxy (ip6? )?to|comment "tproxy: intercept/, table);
    });

    it('a reload removing the entry keeps its reply routing while its flow drains, and removes it after', async () => {
      const flow = lab.spawn('router', [process.execPath, PROXIED_CLIENT, '127.0.0.1', '8444', `${v2Header4(CLIENT4, 40_002)}${Buffer.from('ECHO\n').toString('hex')}`]);
      const out = new JsonLines<{ event?: string; data?: string }>(flow.child.stdout!);
      let echoed = '';
      const echo = async (text: string): Promise<void> => {
        flow.child.stdin!.write(`${text}\n`);
        await out.waitFor((l) => (echoed += l.data ?? '').includes(`${text}\n`), 5000, `the echo of ${text}`);
      };
      await echo('before');
      // The entry left needs no IPv4 loopback rule: its IPv4 backend is on another host.
      writeFileSync(config(), readFileSync(config(), 'utf8').replace(/ {2}- name: lb[^]*$/, ['  - name: other', '    listen: [127.0.0.1:8446]', `    backend4: ${LAB_ADDRESSES.server.ipv4}:8080`, '    backend6: "[::1]:8080"', ''].join('\n')));
      let readies = 0;
      daemon.child.kill('SIGHUP');
      await daemonLog.waitFor((l) => l.type === 'ready' && ++readies === 2, 15_000, 'ready again after the reload');
      assert.equal(daemonLog.find((l) => l.type === 'reload.rejected'), undefined);
      assert.match((await lab.run('router', ['ip', '-4', 'rule'])).stdout, /^9000:\s+from 127\.0\.0\.0\/8 iif lo lookup 100/m, 'kept for the draining flow');
      await echo('during the drain');
      flow.child.stdin!.end();
      assert.equal(await flow.exited, 0);
      await until(async () => (await lab.run('router', ['ip', '-4', 'rule'])).stdout, (s) => !/from 127\.0\.0\.0\/8 iif lo/.test(s), 10_000, 'the IPv4 loopback rule removed once the flow ended');
      // What the entry left asks for stays: IPv6 loopback, the IPv4 divert.
      assert.match((await lab.run('router', ['ip', '-6', 'rule'])).stdout, /^9000:\s+from ::1 iif lo lookup 100/m);
      assert.match((await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_rules'])).stdout, /comment "tproxy: divert tcp ipv4"/);
    });

    it('removes its rules when it stops', async () => {
      daemon.child.kill('SIGTERM');
      assert.equal(await daemon.exited, 0);
      for (const family of ['-4', '-6']) {
        const rules = (await lab.run('router', ['ip', family, 'rule'])).stdout;
        assert.doesNotMatch(rules, /iif lo|fwmark|lookup 100/, rules);
      }
      assert.notEqual((await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_rules'], { check: false })).exitCode, 0);
      await until(async () => (await lab.run('router', ['ss', '-ltnH'])).stdout, (s) => !s.includes('127.0.0.1:8446'), 5000, 'the mmproxy port closed');
    });
  });
}

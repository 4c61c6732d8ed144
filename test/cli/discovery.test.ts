// What runs here: options, else the daemon (found through `ss -x` of the namespace and asked over
// its admin socket, here a real unix socket answering the protocol), else our record, else defaults.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeSource, runningConfig, type FoundRecord } from '../../src/cli/discovery.js';
import { rulesConfigFrom } from '../../src/cli/selection.js';
import { answer, type DaemonConfig } from '../../src/daemon/admin-protocol.js';
import { FakeRunner } from '../helpers/fake-runner.js';

const DAEMON: DaemonConfig = {
  pid: 4242,
  version: '0.1.0',
  file: '/etc/tproxy.yaml',
  argv: ['--config', '/etc/tproxy.yaml'],
  rulesApply: false,
  backend: 'auto',
  upstream: 'transparent',
  rules: rulesConfigFrom({ intercept: ['tcp:80'] }),
};

const RECORD: FoundRecord = { record: { families: [4], fwmark: 0x10, fwmarkMask: 0x10, routeTable: 110, rulePriority: 9100, owner: 4242 }, where: 'table inet tproxy_rules', backend: 'nft' };

describe('what runs here', () => {
  let dir: string;
  let socket: string;
  let server: net.Server;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tpx-discovery-'));
    socket = join(dir, 'admin.sock');
    server = net.createServer((c) => {
      c.setEncoding('utf8');
      c.on('data', (line: string) => void answer(line.trim(), (req) => Promise.resolve(req.method === 'ping' ? { pid: 4242, version: '0.1.0' } : DAEMON)).then((a) => c.end(`${a}\n`)));
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ss = (path: string): FakeRunner => new FakeRunner([['ss -H -x -l -p', { stdout: `u_str LISTEN 0 511 ${path} 15793 * 0 users:(("node",pid=4242,fd=19))\n` }]]);

  it('the daemon our record names as owner is asked; its configuration and options win over the record', async () => {
    const running = await runningConfig({}, false, [], { runner: ss(socket), record: () => Promise.resolve(RECORD) });
    assert.deepEqual(running.source, { kind: 'daemon', pid: 4242, socket, file: '/etc/tproxy.yaml' });
    assert.deepEqual([running.rules.listeners[0]?.intercept, running.rulesApply, running.upstream, running.argv], [[{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }], false, 'transparent', ['--config', '/etc/tproxy.yaml']]);
    assert.match(describeSource(running.source), /^configuration: the running daemon's \(tproxy run pid 4242, asked on .*admin\.sock; file \/etc\/tproxy\.yaml\)$/);
  });

  it('a socket of a process that is neither the owner nor a transparent socket holder is not asked', async () => {
    const running = await runningConfig({}, false, [], { runner: ss(socket), record: () => Promise.resolve(undefined) });
    assert.equal(running.source.kind, 'defaults');
  });

  it('no daemon answers: the record over the defaults; nothing: the defaults; options: the options', async () => {
    const record = await runningConfig({}, false, [], { runner: ss(join(dir, 'gone.sock')), record: () => Promise.resolve(RECORD) });
    assert.equal(record.source.kind, 'record');
    assert.deepEqual([record.rules.fwmark, record.rules.routeTable, record.rules.rulePriority, record.rules.families], [0x10, 110, 9100, [4]]);
    assert.equal(describeSource(record.source), 'configuration: what table inet tproxy_rules records (applied by tproxy run pid 4242), over the defaults (no daemon answers here)');
    const options = await runningConfig({ intercept: ['udp:53'] }, true, ['--intercept', 'udp:53'], { runner: ss(socket), record: () => Promise.resolve(RECORD) });
    assert.deepEqual([options.source, options.argv], [{ kind: 'options' }, ['--intercept', 'udp:53']]);
  });
});

// tproxy run as an unprivileged user (uid 65534) holding only CAP_NET_ADMIN and
// CAP_NET_BIND_SERVICE, as the systemd unit runs it: the capabilities are ambient, so the TCP workers
// and nft / ip (child processes) have them too. CAP_NET_BIND_SERVICE is needed because UDP reply
// sockets bind the original destination's port (80 here).
import assert from 'node:assert/strict';
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../src/lab/json-lines.js';
import { LAB_ADDRESSES as A, Lab } from '../../src/lab/topology.js';
import { fetchStatus } from '../../src/daemon/operations.js';
import { probe, startEchoServer } from '../helpers/lab-flows.js';
import { unprivilegedCopy, type UnprivilegedCopy } from '../helpers/unprivileged.js';

const NOBODY = 65534;
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const ARGS = ['run', '--intercept', 'tcp:80', '--intercept', 'udp:80', '--listen', '8300', '--workers', '2', '--table', 'tproxy_nobody', '--route-table', '133', '--rule-priority', '9133', '--log-format', 'json', '--log-level', 'debug'];

describe('tproxy run without root, with only CAP_NET_ADMIN and CAP_NET_BIND_SERVICE (root: builds the lab)', () => {
  let lab: Lab;
  let copy: UnprivilegedCopy;
  let dir: string;
  before(async () => {
    lab = await Lab.create();
    await startEchoServer(lab);
    copy = unprivilegedCopy();
    dir = mkdtempSync(join(tmpdir(), 'tproxy-nobody-'));
    chownSync(dir, NOBODY, NOBODY);
  });
  after(async () => {
    await lab.destroy();
    copy.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses plainly without the capability', async () => {
    const result = await lab.run('router', [...AS_NOBODY, '--inh-caps=-all', process.execPath, copy.bin, ...ARGS], { check: false });
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /^tproxy run: tproxy run needs CAP_NET_ADMIN \(transparent sockets, packet marks, kernel rules\): run as root, or grant it: .*\[ERR_PRIVILEGE\]$/m);
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '', 'nothing applied');
    const adminOnly = await lab.run('router', [...AS_NOBODY, '--inh-caps=+net_admin', '--ambient-caps=+net_admin', process.execPath, copy.bin, ...ARGS], { check: false });
    assert.equal(adminOnly.exitCode, 1);
    assert.match(adminOnly.stderr, /^tproxy run: intercepting udp:80 needs CAP_NET_BIND_SERVICE: each UDP session's reply socket binds the original destination's port, which is below 1024: .*\[ERR_PRIVILEGE\]$/m);
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '', 'nothing applied');
  });

  it('applies its rules, relays TCP and UDP, answers status, and removes its rules on SIGTERM', async () => {
    const socket = join(dir, 'admin.sock');
    const daemon = lab.spawn('router', [...AS_NOBODY, '--inh-caps=+net_admin,+net_bind_service', '--ambient-caps=+net_admin,+net_bind_service', process.execPath, copy.bin, ...ARGS, '--admin-socket', socket]);
    const lines = new JsonLines<{ type: string; uid?: number; capabilities?: string[]; ambient?: string[]; tcpWorkers?: number[]; originalDestination?: { address: string } }>(daemon.child.stderr!);
    const ready = await lines.waitFor((l) => l.type === 'ready', 60_000, 'the unprivileged daemon ready');
    const privileges = lines.find((l) => l.type === 'privileges');
    assert.equal(privileges?.uid, NOBODY);
    assert.deepEqual(privileges?.capabilities, ['net_bind_service', 'net_admin']);
    assert.deepEqual(privileges?.ambient, ['net_bind_service', 'net_admin']);
    assert.ok(lines.find((l) => l.type === 'rules.applied'), 'nft and ip ran with the ambient capability');
    assert.equal(ready.tcpWorkers?.length, 2);

    for (const [transport, host] of [['tcp', A.server.ipv4], ['udp', A.server.ipv6], ['tcp', A.server.ipv6]] as const) {
      const result = await probe(lab, 'client', transport, host, `as nobody ${transport}`);
      assert.equal(result.ok, true, `${transport} ${host}: ${result.reason ?? ''}`);
      await lines.waitFor((l) => (l.type === 'tcp.accept' || l.type === 'udp.session.open') && l.originalDestination?.address === host, 10_000, `the proxy relaying ${transport} to ${host}`);
    }

    const stat = statSync(socket);
    assert.equal(stat.uid, NOBODY, 'the socket belongs to the daemon\'s user');
    assert.equal(stat.mode & 0o777, 0o600);
    // Workers report their counters once a second.
    let status = await fetchStatus(socket, 5);
    const tcp = (): number => status.listeners[0]?.counters.tcp.accepted ?? 0;
    for (let i = 0; i < 40 && tcp() < 2; i++) {
      await new Promise((r) => setTimeout(r, 250));
      status = await fetchStatus(socket, 5);
    }
    assert.equal(status.pid, daemon.child.pid);
    assert.equal(status.rules.managed && 'inPlace' in status.rules && status.rules.inPlace, true);
    assert.equal(tcp(), 2);
    assert.equal(status.listeners[0]?.counters.udp?.sessionsCreated, 1);

    daemon.child.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    assert.ok(lines.find((l) => l.type === 'rules.removed'));
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '');
    assert.doesNotMatch((await lab.run('router', ['ip', 'rule'])).stdout, /9133/);
  });
});

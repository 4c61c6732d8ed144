import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli } from '../helpers/cli.js';
import { HEALTHY_FILE } from '../helpers/doctor.js';

const FLAGS = ['--intercept', 'tcp:80', '--intercept', 'udp:80'];

describe('tproxy doctor --snapshot', () => {
  it('a healthy saved state: exit 0', async () => {
    const { code, out } = await cli('doctor', '--snapshot', HEALTHY_FILE, ...FLAGS);
    assert.equal(code, 0, out);
    assert.match(out, /^configuration: the options given\ntproxy doctor: healthy \(0 fail, 0 warn, \d+ ok\)/);
  });

  it('no options: what our table records (listeners, ports, fwmark) is the configuration, not the defaults', async () => {
    const { code, out } = await cli('doctor', '--json', '--snapshot', HEALTHY_FILE);
    const report = JSON.parse(out) as { status: number; configuration: { kind: string; text: string }; findings: { id: string; severity: string }[] };
    assert.equal(report.configuration.kind, 'record');
    assert.match(report.configuration.text, /^configuration: what table inet tproxy_rules records \(applied by tproxy run pid \d+\), over the defaults \(a saved state: no daemon asked\)$/);
    assert.deepEqual(report.findings.filter((f) => f.severity === 'fail'), []);
    assert.ok(report.findings.some((f) => f.id === 'probe.udp.ipv4.80'), 'udp:80, as the table intercepts');
    assert.ok(!report.findings.some((f) => f.id.endsWith('.443')), 'no probe for the default 443');
    assert.equal(code, 0);
  });

  it('a broken one: exit 1, JSON findings whose fix commands carry the options given', async () => {
    const s = JSON.parse(readFileSync(HEALTHY_FILE, 'utf8')) as { sockets: string };
    s.sockets = '';
    const dir = mkdtempSync(join(tmpdir(), 'tproxy-doctor-'));
    const file = join(dir, 'state.json');
    writeFileSync(file, JSON.stringify(s));
    const { code, out } = await cli('doctor', '--json', '--snapshot', file, ...FLAGS, '--workers', '0', '--upstream', 'transparent').finally(() => rmSync(dir, { recursive: true, force: true }));
    assert.equal(code, 1);
    const report = JSON.parse(out) as { status: number; findings: { id: string; severity: string; fix?: string }[] };
    assert.equal(report.status, 1);
    const listener = report.findings.find((f) => f.id === 'sockets.listener.tcp.ipv4');
    assert.equal(listener?.fix, 'tproxy run --intercept tcp:80 --intercept udp:80 --workers 0 --upstream transparent');
  });

  it('bad input is a usage error (exit 2)', async () => {
    assert.equal((await cli('doctor', '--snapshot', HEALTHY_FILE, '--upstream', 'sideways')).code, 2);
    assert.equal((await cli('doctor', '--snapshot', '/nonexistent/state.json')).code, 2);
    assert.equal((await cli('doctor', '--intercept', 'icmp:1')).code, 2);
  });
});

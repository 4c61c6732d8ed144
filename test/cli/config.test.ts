// `tproxy config check FILE` and `tproxy config example` through the command line.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cli, cliWithInput } from '../helpers/cli.js';

describe('tproxy config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-config-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('prints an example that config check accepts', async () => {
    const example = await cli('config', 'example');
    assert.equal(example.code, 0);
    assert.match(example.out, /^# tproxy configuration/);
    const checked = await cli('config', 'check', file('example.yaml', example.out));
    assert.deepEqual([checked.code, checked.err], [0, '']);
    assert.equal(checked.out, `${join(dir, 'example.yaml')}: valid\nlisteners: main (port 8000: tcp:80,443)\nrules: table inet tproxy_rules, 12 rules, fail mode drop\n`);
  });

  it('checks standard input when FILE is -, naming it <stdin> in problems', async () => {
    const example = await cli('config', 'example');
    const checked = await cliWithInput(example.out, 'config', 'check', '-');
    assert.deepEqual([checked.code, checked.err], [0, '']);
    assert.match(checked.out, /^<stdin>: valid\nlisteners: main \(port 8000/);
    const bad = await cliWithInput('listeners:\n  - port: 0\n', 'config', 'check', '-');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /<stdin>:2:11: listeners\[0\]\.port: 0 is not allowed/);
  });

  it('checks two listeners and prints the configuration with defaults as JSON', async () => {
    const path = file('two.yaml', 'listeners:\n  - { name: web, intercept: [tcp:80, tcp:443] }\n  - { name: dns, port: 8053, families: [4], intercept: [udp:53] }\nrules: { apply: false }\n');
    const checked = await cli('config', 'check', path);
    assert.equal(checked.out, `${path}: valid\nlisteners: web (port 8000: tcp:80,443), dns (port 8053: udp:53)\nrules: not applied (rules.apply: false)\n`);
    const json = JSON.parse((await cli('config', 'check', '--json', path)).out) as { listeners: { name: string; udp: { maxSessions: number } }[] };
    assert.deepEqual(json.listeners.map((l) => [l.name, l.udp.maxSessions]), [['web', 65_536], ['dns', 65_536]]);
  });

  it('refuses an invalid file with every problem (exit 2), and applies nothing', async () => {
    const path = file('bad.yaml', 'listeners:\n  - name: web\n    port: 0\nrules:\n  failmode: open\n');
    const checked = await cli('config', 'check', path);
    assert.equal(checked.code, 2);
    assert.equal(checked.out, '');
    assert.equal(
      checked.err,
      `tproxy config: 2 problems in the configuration:\n  ${path}:3:11: listeners[0].port: 0 is not allowed: use a port from 1 to 65535\n  ${path}:5:3: rules.failmode: unknown setting: did you mean failMode? (allowed here: apply, backend, table, interfaces, bypass, local, mangle, failMode, fwmark, fwmarkMask, routeTable, rulePriority) [ERR_INVALID_ARGUMENT]\n`,
    );
  });

  it('says what it expects', async () => {
    assert.equal((await cli('config', 'check', join(dir, 'missing.yaml'))).err, `tproxy config: ${join(dir, 'missing.yaml')}: cannot read it (ENOENT) [ERR_INVALID_ARGUMENT]\n`);
    const wrong = await cli('config', 'lint');
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /expected "check FILE" or "example", got "lint"/);
    assert.match((await cli('config', '--help')).out, /^Usage: tproxy config check \[--json\] FILE/);
  });
});

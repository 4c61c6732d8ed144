// reload.watch in a running daemon: a ConfigMap-style update (the ..data symlink swapped) reloads
// it as SIGHUP would (a listener added, its rules in the kernel), an invalid update is refused
// with the old configuration kept, and a rewrite with the same content reloads nothing.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../src/lab/json-lines.js';
import { Lab, type SpawnedProcess } from '../../src/lab/topology.js';
import { BIN } from '../helpers/paths.js';

type Line = { type: string; added?: string[]; error?: string; file?: string };

const BASE = 'rules: { table: tproxy_watch, routeTable: 133, rulePriority: 9133 }\ntcp: { workers: 1 }\nreload: { watch: true }\n';
const WEB = '  - { name: web, port: 8100, intercept: [tcp:80] }\n';
const ALT = '  - { name: alt, port: 8101, intercept: [tcp:8080] }\n';

describe('tproxy run with reload.watch (root)', () => {
  let lab: Lab;
  let dir: string;
  let proxy: SpawnedProcess;
  let logs: JsonLines<Line>;
  let stamp = 0;
  /** A ConfigMap volume update: a new ..TIMESTAMP directory, ..data swapped to it by a rename. */
  const update = (text: string): void => {
    const name = `..2026_12_07_00_00_0${++stamp}.${stamp}`;
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'tproxy.yaml'), text);
    symlinkSync(name, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-watch-'));
    update(`listeners:\n${WEB}${BASE}`);
    symlinkSync('..data/tproxy.yaml', join(dir, 'tproxy.yaml'));
    lab = await Lab.create();
    proxy = lab.spawn('router', [process.execPath, BIN, 'run', '--config', join(dir, 'tproxy.yaml'), '--log-format', 'json']);
    logs = new JsonLines<Line>(proxy.child.stderr!);
    await logs.waitFor((l) => l.type === 'ready', 60_000, 'tproxy run ready');
  });
  /** The next line of `type` logged after now (lines already seen do not count). */
  const next = (type: string, what: string, timeoutMs = 30_000): Promise<Line> => {
    const from = logs.items.length;
    return logs.waitFor((l) => l.type === type && logs.items.indexOf(l) >= from, timeoutMs, what).catch((error: Error) => {
      throw new Error(`${error.message}; logged since: ${logs.text.slice(from).join('\n').slice(-3000)}`);
    });
  };
  after(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reloads when the ConfigMap-style symlink is swapped: the added listener runs and its rule is in the kernel', async () => {
    const applied = next('reload.applied', 'the reload');
    update(`listeners:\n${WEB}${ALT}${BASE}`);
    assert.deepEqual((await applied).added, ['alt']);
    const ruleset = (await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_watch'])).stdout;
    assert.match(ruleset, /tproxy ip to :8101 .*\(alt\)/);
  });

  it('refuses an invalid update and keeps what runs', async () => {
    const rejected = next('reload.rejected', 'the refusal');
    update(`listeners:\n  - { name: web, port: 0 }\n${BASE}`);
    assert.match((await rejected).error ?? '', /port/);
    assert.match((await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_watch'])).stdout, /tproxy ip to :8101 .*\(alt\)/);
  });

  it('does not reload for an update with the same content', async () => {
    // This one differs from the refused file: it reloads (to what runs already).
    const back = next('reload.applied', 'the reload back to the running file');
    update(`listeners:\n${WEB}${ALT}${BASE}`);
    await back;
    const from = logs.items.length;
    update(`listeners:\n${WEB}${ALT}${BASE}`);
    // Then a real change: once it is seen, the identical update before it would have been seen too.
    const changed = next('reload.applied', 'the reload after the identical update');
    update(`listeners:\n${WEB}${BASE}`);
    await changed;
    assert.deepEqual(logs.items.slice(from).filter((l) => l.type === 'config.changed').length, 1, 'only the real change reloaded');
  });
});

// bin/tproxy.js without dist/: a clone is told to build, an installed package how to reinstall.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN } from '../helpers/paths.js';

describe('bin/tproxy.js without its build', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-bin-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function tree(name: string, clone: boolean): string {
    const root = join(dir, name);
    mkdirSync(join(root, 'bin'), { recursive: true });
    copyFileSync(BIN, join(root, 'bin', 'tproxy.js'));
    writeFileSync(join(root, 'package.json'), '{"type":"module"}');
    if (clone) {
      mkdirSync(join(root, 'scripts'));
      writeFileSync(join(root, 'scripts', 'setup.sh'), '');
    }
    return join(root, 'bin', 'tproxy.js');
  }

  it('in a clone: says to run the setup script', () => {
    const run = spawnSync(process.execPath, [tree('clone', true), '--version'], { encoding: 'utf8' });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^tproxy: not built yet: run `bash scripts\/setup\.sh`/);
  });

  it('in an installed package: says how to install one that is built, without a setup script it lacks', () => {
    const run = spawnSync(process.execPath, [tree('installed', false), '--version'], { encoding: 'utf8' });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /installed without its build step\. Install a packed tarball \(npm pack\) or a git URL/);
    assert.doesNotMatch(run.stderr, /setup\.sh/);
  });
});

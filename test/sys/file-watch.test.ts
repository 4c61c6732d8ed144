// The config file watch: each way a file changes on disk is seen once, a write of the same content
// is not, and a Kubernetes ConfigMap update (the ..data symlink swapped by a rename) is.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { watchFileContent } from '../../src/sys/file-watch.js';

/** Resolves at the next change the watch reports (or rejects after 5 s: events, not sleeps). */
function changes(): { next(): Promise<void>; onChange: () => void; count: () => number } {
  let n = 0;
  let waiting: (() => void) | undefined;
  return {
    onChange: () => {
      n++;
      waiting?.();
      waiting = undefined;
    },
    count: () => n,
    next: () =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no change reported within 5 s')), 5000);
        waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      }),
  };
}

/** A ConfigMap volume as the kubelet writes it: ..YYYY dir, ..data -> it, the key -> ..data/key. */
async function configMapUpdate(dir: string, stamp: string, content: string): Promise<void> {
  await mkdir(path.join(dir, stamp));
  await writeFile(path.join(dir, stamp, 'config.yaml'), content);
  await symlink(stamp, path.join(dir, '..data_tmp'));
  await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
}

describe('file watch', () => {
  it('sees in-place writes and renames over the file, not rewrites of the same content', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tproxy-watch-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'tproxy.yaml');
    await writeFile(file, 'a: 1\n');
    const c = changes();
    const w = await watchFileContent(file, c.onChange, { settleMs: 20 });
    t.after(() => w.close());
    let next = c.next();
    await writeFile(file, 'a: 2\n');
    await next;
    next = c.next();
    await writeFile(path.join(dir, 'tproxy.yaml.new'), 'a: 3\n');
    await rename(path.join(dir, 'tproxy.yaml.new'), file);
    await next;
    assert.equal(c.count(), 2);
    // The same content again, then a real change: only the change is reported.
    await writeFile(file, 'a: 3\n');
    next = c.next();
    await writeFile(file, 'a: 4\n');
    await next;
    assert.equal(c.count(), 3);
  });

  it('sees a ConfigMap update: the ..data symlink swapped atomically, the old directory removed', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tproxy-watch-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await configMapUpdate(dir, '..2026_12_07_00_00_00.1', 'a: 1\n');
    await symlink('..data/config.yaml', path.join(dir, 'config.yaml'));
    const c = changes();
    const w = await watchFileContent(path.join(dir, 'config.yaml'), c.onChange, { settleMs: 20 });
    t.after(() => w.close());
    let next = c.next();
    await configMapUpdate(dir, '..2026_12_07_00_01_00.2', 'a: 2\n');
    await rm(path.join(dir, '..2026_12_07_00_00_00.1'), { recursive: true });
    await next;
    next = c.next();
    await configMapUpdate(dir, '..2026_12_07_00_02_00.3', 'a: 3\n');
    await next;
    assert.equal(c.count(), 2);
  });

  it('sees an in-place edit of the file a symlink points to in another directory', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tproxy-watch-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await mkdir(path.join(dir, 'real'));
    await mkdir(path.join(dir, 'etc'));
    await writeFile(path.join(dir, 'real', 'tproxy.yaml'), 'a: 1\n');
    await symlink(path.join(dir, 'real', 'tproxy.yaml'), path.join(dir, 'etc', 'tproxy.yaml'));
    const c = changes();
    const w = await watchFileContent(path.join(dir, 'etc', 'tproxy.yaml'), c.onChange, { settleMs: 20 });
    t.after(() => w.close());
    const next = c.next();
    await writeFile(path.join(dir, 'real', 'tproxy.yaml'), 'a: 2\n');
    await next;
    assert.equal(c.count(), 1);
  });

  it('refuses to start on a file that cannot be read', async () => {
    await assert.rejects(watchFileContent(path.join(os.tmpdir(), 'tproxy-no-such-dir', 'x.yaml'), () => undefined), /ENOENT/);
  });
});

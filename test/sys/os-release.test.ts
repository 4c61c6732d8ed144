import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readDistroFamily } from '../../src/sys/os-release.js';

describe('os-release', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-os-release-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the first file that exists', () => {
    const fedora = join(dir, 'fedora');
    writeFileSync(fedora, 'NAME="Fedora Linux"\nID=fedora\n');
    assert.equal(readDistroFamily([join(dir, 'absent'), fedora]), 'fedora');
  });

  it('is undefined when no file can be read or the distribution is unknown', () => {
    assert.equal(readDistroFamily([join(dir, 'absent')]), undefined);
    const other = join(dir, 'other');
    writeFileSync(other, 'ID=gentoo\n');
    assert.equal(readDistroFamily([other]), undefined);
  });
});

// The image's capability handover, tried outside a container (no runtime here): the Dockerfile's
// own steps, a setpriv copy with NET_ADMIN and NET_BIND_SERVICE as file capabilities, executable
// by its group only, and its ENTRYPOINT flags, give a non-root user exactly those two as ambient
// capabilities (what tproxy run checks for), and nothing to a user outside the group.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const dockerfile = readFileSync(new URL('../../../Dockerfile', import.meta.url), 'utf8');
const NOBODY = 65534;
/** CAP_NET_ADMIN (12) and CAP_NET_BIND_SERVICE (10). */
const TWO_CAPS = (1n << 12n) | (1n << 10n);

describe('the container image\'s capability handover (root)', () => {
  it('gives a non-root member of the group NET_ADMIN and NET_BIND_SERVICE as ambient capabilities, and no one else', (t) => {
    const setcap = /setcap (\S+) \/usr\/local\/lib\/tproxy\/caps/.exec(dockerfile)?.[1];
    const mode = /install -m (\d+) -o root -g tproxy \/usr\/bin\/setpriv \/usr\/local\/lib\/tproxy\/caps/.exec(dockerfile)?.[1];
    const entrypoint = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
    assert.ok(setcap && mode && entrypoint[0] === '/usr/local/lib/tproxy/caps' && entrypoint.at(-1) === 'tproxy', 'the Dockerfile steps are found');
    const dir = mkdtempSync(join(tmpdir(), 'tproxy-caps-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    const caps = join(dir, 'caps');
    copyFileSync('/usr/bin/setpriv', caps);
    chownSync(caps, 0, NOBODY);
    chmodSync(caps, parseInt(mode, 8));
    execFileSync('setcap', [setcap, caps]);
    // As the image's user: the entrypoint's flags, then a program that shows what it holds.
    const flags = entrypoint.slice(1, -1);
    // (Through sh: setpriv keeps root's capabilities until its own exec, the image's user has none.)
    const asUser = (uid: number, gid: number, argv: readonly string[]): string[] => ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, `--groups=${gid}`, 'sh', '-c', 'exec "$0" "$@"', ...argv];
    const [command, ...args] = asUser(NOBODY, NOBODY, [caps, ...flags, 'cat', '/proc/self/status']) as [string, ...string[]];
    const status = execFileSync(command, args, { encoding: 'utf8' });
    const field = (name: string): bigint => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? 'x'}`);
    assert.match(status, new RegExp(`^Uid:\\s+${NOBODY}\\s`, 'm'));
    assert.equal(field('CapBnd') & TWO_CAPS, TWO_CAPS);
    assert.equal(field('CapAmb'), TWO_CAPS, 'ambient: survives execve into node, its TCP workers, nft and ip');
    assert.equal(field('CapEff'), TWO_CAPS);
    assert.equal(field('CapPrm'), TWO_CAPS);
    // Another unprivileged user (not in the group) cannot run it at all.
    const [otherCommand, ...otherArgs] = asUser(65533, 65533, [caps, ...flags, 'true']) as [string, ...string[]];
    const other = spawnSync(otherCommand, otherArgs, { encoding: 'utf8' });
    assert.notEqual(other.status, 0);
    assert.match(other.stderr, /Permission denied/);
  });
});

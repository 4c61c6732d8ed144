import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { request, serveAdminSocket } from '../../src/sys/admin-socket.js';

const dir = mkdtempSync(join(tmpdir(), 'tproxy-admin-'));
const hooks = (stale: string[] = []): Parameters<typeof serveAdminSocket>[2] => ({ onStale: (p) => stale.push(p), onError: () => undefined });
const echo = (line: string): Promise<string> => Promise.resolve(`got ${line}`);
const live = (first: string | undefined): string => `live: ${first ?? '-'}`;

describe('admin socket', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is created owner-only (0600), answers line by line, and is removed on close', async () => {
    const path = join(dir, 'a.sock');
    const endpoint = await serveAdminSocket(path, echo, hooks(), 'hello', live);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(await request(path, 'one', 2000), 'got one');
    await endpoint.close();
    assert.equal(existsSync(path), false);
  });

  it('refuses a path a live program answers on, naming what answered', async () => {
    const path = join(dir, 'b.sock');
    const first = await serveAdminSocket(path, echo, hooks(), 'hello', live);
    await assert.rejects(serveAdminSocket(path, echo, hooks(), 'hello', live), { code: 'ERR_CONFLICT', message: `live: got hello on the admin socket ${path}: stop it first, or give this daemon another --admin-socket` });
    assert.equal(await request(path, 'still', 2000), 'got still', 'the first one keeps its socket');
    await first.close();
  });

  it('removes a stale socket file (its program died) and takes the path', async () => {
    const path = join(dir, 'c.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((resolve) => child.once('exit', resolve));
    assert.ok(statSync(path).isSocket(), 'the dead program left its socket file');
    const stale: string[] = [];
    const endpoint = await serveAdminSocket(path, echo, hooks(stale), 'hello', live);
    assert.deepEqual(stale, [path]);
    assert.equal(await request(path, 'x', 2000), 'got x');
    await endpoint.close();
  });

  it('refuses a path that is not a socket, and says when nothing answers', async () => {
    const path = join(dir, 'file');
    writeFileSync(path, 'x');
    await assert.rejects(serveAdminSocket(path, echo, hooks(), 'hello', live), { code: 'ERR_CONFLICT', message: `the admin socket path ${path} exists and is not a socket: remove it or choose another --admin-socket` });
    await assert.rejects(request(join(dir, 'none.sock'), 'x', 2000), { code: 'ERR_NOT_RUNNING' });
    await assert.rejects(serveAdminSocket(join(dir, 'no/such/dir.sock'), echo, hooks(), 'hello', live), /: its directory \S+\/no\/such does not exist$/);
  });
});

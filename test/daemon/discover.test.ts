import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maskSecrets } from '../../src/daemon/admin-protocol.js';
import { adminCandidates, parseUnixListeners } from '../../src/daemon/discover.js';

const SS = [
  'u_str LISTEN 0      511    /run/tproxy/admin.sock 15793 * 0 users:(("node",pid=7935,fd=19))',
  'u_str LISTEN 0      4096   /run/systemd/private 1201 * 0 users:(("systemd",pid=1,fd=14))',
  'u_str LISTEN 0      511    /tmp/tpx/admin.sock 15800 * 0 users:(("node",pid=8000,fd=19))',
  'u_str LISTEN 0      511    @abstract 15801 * 0 users:(("x",pid=9,fd=3))',
  'u_str LISTEN 0      511    /var/run/other.sock 15802 * 0 users:(("haproxy",pid=9100,fd=3),("haproxy",pid=9101,fd=3))',
].join('\n');

describe('finding the daemon', () => {
  it('reads listening unix sockets bound to a path, with their processes', () => {
    assert.deepEqual(parseUnixListeners(SS), [
      { path: '/run/tproxy/admin.sock', pids: [7935] },
      { path: '/run/systemd/private', pids: [1] },
      { path: '/tmp/tpx/admin.sock', pids: [8000] },
      { path: '/var/run/other.sock', pids: [9100, 9101] },
    ]);
  });

  it('asks the default socket, then the recorded owner, then holders of transparent sockets and their parents; nobody else', () => {
    const listeners = parseUnixListeners(SS);
    assert.deepEqual(adminCandidates(listeners, 8000, [], new Map()), ['/run/tproxy/admin.sock', '/tmp/tpx/admin.sock']);
    // A TCP worker (pid 8001) holds the transparent listener; its parent the admin socket.
    assert.deepEqual(adminCandidates(listeners, undefined, [8001], new Map([[8001, 8000]]), '/nowhere'), ['/tmp/tpx/admin.sock']);
    assert.deepEqual(adminCandidates(listeners, undefined, [9101], new Map([[9101, 1]]), '/nowhere'), ['/var/run/other.sock'], 'pid 1 is never taken as the parent daemon');
    assert.deepEqual(adminCandidates(listeners, undefined, [], new Map(), '/nowhere'), []);
  });

  it('masks passwords in the options a daemon reports', () => {
    assert.equal(maskSecrets('socks5://me:secret@192.0.2.7:1080'), 'socks5://me:***@192.0.2.7:1080');
    assert.equal(maskSecrets('--upstream-proxy=http://a:b%40c@[2001:db8::7]:3128'), '--upstream-proxy=http://a:***@[2001:db8::7]:3128');
    assert.equal(maskSecrets('http://192.0.2.7:3128'), 'http://192.0.2.7:3128');
  });
});

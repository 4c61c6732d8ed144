// Real kernel sockets on loopback (no traffic leaves the host's loopback; no rules are changed).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { after, describe, it } from 'node:test';
import { isTproxyError } from '../../src/core/errors.js';
import * as C from '../../src/core/net/constants.js';
import { encodeSockaddr } from '../../src/core/net/sockaddr.js';
import { SocketApi } from '../../src/sys/socket.js';
import { SOCKET_MODULE } from '../helpers/paths.js';

const api = new SocketApi();
const opened: number[] = [];
const open = (...args: Parameters<SocketApi['open']>): number => {
  const fd = api.open(...args);
  opened.push(fd);
  return fd;
};
after(() => {
  for (const fd of opened) {
    try {
      api.close(fd);
    } catch {
      // closed by the test
    }
  }
});

describe('socket layer (root)', () => {
  it('sets IP_TRANSPARENT, SO_MARK, SO_REUSEADDR, SO_REUSEPORT and IP_FREEBIND on a TCP socket', () => {
    const fd = open({ family: 4, transport: 'tcp', transparent: true, mark: 0x2a, reuseAddress: true, reusePort: true, freebind: true, bindAddressNoPort: true });
    assert.equal(api.getInt(fd, C.SOL_IP, C.IP_TRANSPARENT), 1);
    assert.equal(api.getInt(fd, C.SOL_SOCKET, C.SO_MARK), 0x2a);
    assert.equal(api.getInt(fd, C.SOL_SOCKET, C.SO_REUSEADDR), 1);
    assert.equal(api.getInt(fd, C.SOL_SOCKET, C.SO_REUSEPORT), 1);
    assert.equal(api.getInt(fd, C.SOL_IP, C.IP_FREEBIND), 1);
    assert.equal(api.getInt(fd, C.SOL_IP, C.IP_BIND_ADDRESS_NO_PORT), 1);
  });

  it('sets IPV6_TRANSPARENT, IPV6_V6ONLY and IPV6_RECVORIGDSTADDR on an IPv6 UDP socket', () => {
    const fd = open({ family: 6, transport: 'udp', transparent: true, recvOriginalDestination: true });
    assert.equal(api.getInt(fd, C.SOL_IPV6, C.IPV6_TRANSPARENT), 1);
    assert.equal(api.getInt(fd, C.SOL_IPV6, C.IPV6_V6ONLY), 1);
    assert.equal(api.getInt(fd, C.SOL_IPV6, C.IPV6_RECVORIGDSTADDR), 1);
  });

  it('binds, listens and reports the local endpoint', () => {
    const fd = open({ family: 4, transport: 'tcp', reuseAddress: true });
    api.bind(fd, { family: 4, address: '127.0.0.1', port: 0 });
    api.listen(fd, 16);
    const local = api.localEndpoint(fd);
    assert.equal(local.address, '127.0.0.1');
    assert.ok(local.port > 0);
  });

  it('binds a foreign address only with IP_TRANSPARENT', () => {
    const plain = open({ family: 4, transport: 'udp' });
    assert.throws(() => api.bind(plain, { family: 4, address: '192.0.2.77', port: 0 }), (e: unknown) => isTproxyError(e, 'ERR_SYSCALL') && e.details.errno === 'EADDRNOTAVAIL' && /not assigned to this host/.test(e.message));
    const transparent = open({ family: 4, transport: 'udp', transparent: true });
    api.bind(transparent, { family: 4, address: '192.0.2.77', port: 0 });
    assert.equal(api.localEndpoint(transparent).address, '192.0.2.77');
  });

  it('turns EADDRINUSE into ERR_ADDRESS_IN_USE with advice', () => {
    const first = open({ family: 4, transport: 'tcp' });
    api.bind(first, { family: 4, address: '127.0.0.1', port: 0 });
    api.listen(first, 1);
    const port = api.localEndpoint(first).port;
    const second = open({ family: 4, transport: 'tcp' });
    assert.throws(
      () => api.bind(second, { family: 4, address: '127.0.0.1', port }),
      (e: unknown) => isTproxyError(e, 'ERR_ADDRESS_IN_USE') && e.details.call === `bind(127.0.0.1:${port})` && /already in use/.test(e.message),
    );
  });

  for (const family of [4, 6] as const) {
    it(`receives datagrams with source and original destination (IPv${family}) through recvmsg`, async () => {
      const loopback = family === 4 ? '127.0.0.1' : '::1';
      const fd = open({ family, transport: 'udp', recvOriginalDestination: true });
      api.bind(fd, { family, address: loopback, port: 0 });
      const local = api.localEndpoint(fd);
      const sender = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
      await new Promise<void>((resolve) => sender.bind(0, loopback, resolve));
      await new Promise<void>((resolve, reject) => sender.send(Buffer.from('ping-recvmsg'), local.port, loopback, (e) => (e ? reject(e) : resolve())));
      const rx = api.receiver(2048);
      const epoll = api.epoll(1);
      epoll.add(fd, C.EPOLLIN);
      assert.equal(epoll.wait(2000), 1, 'datagram ready');
      epoll.close();
      const d = rx.receive(fd);
      assert.ok(d);
      assert.equal(rx.data.subarray(0, d.length).toString(), 'ping-recvmsg');
      assert.equal(d.source.port, sender.address().port);
      assert.deepEqual(d.originalDestination, { family, address: loopback, port: local.port });
      assert.equal(rx.receive(fd), null, 'EAGAIN gives null');
      // and back: sendmsg to the sender
      const got = new Promise<string>((resolve) => sender.once('message', (m) => resolve(m.toString())));
      const pong = Buffer.from('pong');
      assert.equal(api.sendDatagram(fd, pong, pong.length, encodeSockaddr(d.source)), 4);
      assert.equal(await got, 'pong');
      sender.close();
    });
  }

  it('tells whether a datagram waits on a UDP socket without taking it (also an empty one)', async () => {
    const fd = open({ family: 4, transport: 'udp' });
    api.bind(fd, { family: 4, address: '127.0.0.1', port: 0 });
    const { port } = api.localEndpoint(fd);
    assert.equal(api.hasQueuedDatagram(fd), false);
    const sender = dgram.createSocket('udp4');
    try {
      for (const payload of [Buffer.from('a datagram longer than the one byte peeked'), Buffer.alloc(0)]) {
        await new Promise<void>((resolve, reject) => sender.send(payload, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
        // Loopback delivers within the send: bounded wait all the same.
        for (let i = 0; i < 100 && !api.hasQueuedDatagram(fd); i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal(api.hasQueuedDatagram(fd), true);
        assert.equal(api.hasQueuedDatagram(fd), true, 'peeking took nothing');
        assert.equal(api.recv(fd, Buffer.alloc(100)), payload.length);
        assert.equal(api.hasQueuedDatagram(fd), false);
      }
    } finally {
      sender.close();
    }
  });

  it('raises ERR_PRIVILEGE naming CAP_NET_ADMIN when the process lacks it (IP_TRANSPARENT, SO_MARK)', () => {
    const script = `import(${JSON.stringify(SOCKET_MODULE)}).then(({ SocketApi }) => {
      for (const options of [{ transparent: true }, { mark: 2 }]) {
        try { new SocketApi().open({ family: 4, transport: 'tcp', ...options }); console.log('{"opened":true}'); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, errno: e.details.errno })); }
      }
    });`;
    // Root without CAP_NET_ADMIN and CAP_NET_RAW (the kernel accepts either for these options).
    const drop = ['--bounding-set', '-net_admin,-net_raw', '--inh-caps', '-net_admin,-net_raw'];
    const out = execFileSync('setpriv', [...drop, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    const [transparent, mark] = out.trim().split('\n').map((l) => JSON.parse(l) as { code: string; message: string; errno: string });
    assert.equal(transparent?.code, 'ERR_PRIVILEGE');
    assert.equal(transparent?.errno, 'EPERM');
    assert.match(transparent?.message ?? '', /setsockopt\(IP_TRANSPARENT\) failed with EPERM: IP_TRANSPARENT needs CAP_NET_ADMIN/);
    assert.match(mark?.message ?? '', /setsockopt\(SO_MARK\) failed with EPERM: SO_MARK needs CAP_NET_ADMIN/);
  });
});

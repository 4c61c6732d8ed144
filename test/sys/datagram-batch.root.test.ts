// recvmmsg / sendmmsg and epoll on loopback sockets (no rules, no traffic beyond loopback).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { EPOLLIN } from '../../src/core/net/constants.js';
import { SocketApi } from '../../src/sys/socket.js';

describe('datagram batches and epoll (root)', () => {
  it('receives a burst in one recvmmsg with sources, and sends each datagram back to its source in one sendmmsg', async () => {
    const api = new SocketApi();
    const fd = api.open({ family: 4, transport: 'udp' });
    api.bind(fd, { family: 4, address: '127.0.0.1', port: 0 });
    const port = api.localEndpoint(fd).port;
    const epoll = api.epoll(4);
    epoll.add(fd, EPOLLIN);
    const senders = await Promise.all(
      [0, 1, 2].map(async () => {
        const s = dgram.createSocket('udp4');
        await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
        return s;
      }),
    );
    const echoes = senders.map((s) => new Promise<string>((resolve) => s.once('message', (m) => resolve(m.toString()))));
    for (const [i, s] of senders.entries()) await new Promise<void>((r) => s.send(`datagram ${i}`, port, '127.0.0.1', () => r()));
    assert.equal(epoll.wait(2000), 1);
    assert.equal(epoll.readyFd(0), fd);
    const batch = api.batch(8, 2048);
    assert.equal(batch.receive(fd), 3);
    for (let i = 0; i < 3; i++) {
      assert.equal(batch.slot(i).toString(), `datagram ${i}`);
      assert.equal(batch.source(i).port, senders[i]?.address().port);
      assert.equal(batch.sourceIs(i, batch.pin(batch.source(i)).sockaddr), true);
      assert.equal(batch.sourceIs(i, batch.pin({ ...batch.source(i), port: 1 }).sockaddr), false);
    }
    assert.equal(batch.receive(fd), 0, 'nothing left: 0, not an error');
    assert.equal(batch.send(fd, 0, 3, 'source'), 3);
    assert.deepEqual(await Promise.all(echoes), ['datagram 0', 'datagram 1', 'datagram 2']);
    for (const s of senders) s.close();
    epoll.close();
    api.close(fd);
  });
});

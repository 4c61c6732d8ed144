// The UDP mmproxy relay's session events and session list (no privileges: loopback only, and the
// session sockets are opened without IP_TRANSPARENT, IP_FREEBIND and the mark, which need
// CAP_NET_ADMIN; the header names 127.0.0.2, a local address, as the client). A balancer sends two
// datagrams of one client to an echo backend: mmproxy.udp.open names the balancer, the client, the
// header's destination and the backend; sessions() counts datagrams and bytes each way;
// mmproxy.udp.close carries them and why it ended (the operator's close, the stop). With flow
// events off nothing is reported and sessions go on; switched on, the next session is.
// The same through namespaces and `tproxy run`: test/dataplane/mmproxy/udp-run.root.test.ts.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import type { Endpoint } from '../../../src/core/net/sockaddr.js';
import { encodeProxyHeaderV2 } from '../../../src/core/proxy-protocol/v2.js';
import type { ProxyEvent } from '../../../src/dataplane/events.js';
import { MmproxyUdpRelay } from '../../../src/dataplane/mmproxy/udp-relay.js';
import { SocketApi, type SocketOptions } from '../../../src/sys/socket.js';

/** The relay's sockets without the options that need CAP_NET_ADMIN (the relay code is the same). */
class UnprivilegedSockets extends SocketApi {
  override open(options: SocketOptions): number {
    const { transparent: _t, freebind: _f, mark: _m, ...rest } = options;
    return super.open(rest);
  }
}

const ep = (address: string, port: number): Endpoint => ({ family: 4, address, port });

async function boundSocket(): Promise<{ socket: dgram.Socket; port: number }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port };
}

async function until<T>(read: () => T, ok: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = read();
    if (ok(value)) return value;
    if (Date.now() > deadline) assert.fail(`${what}: not within 5 s (${JSON.stringify(value)})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('mmproxy UDP relay: session events and the sessions in progress', () => {
  let echo: { socket: dgram.Socket; port: number };
  let balancer: { socket: dgram.Socket; port: number };
  let listenPort: number;
  let relay: MmproxyUdpRelay;
  let stopped = false;
  const events: ProxyEvent[] = [];
  const replies: string[] = [];

  before(async () => {
    echo = await boundSocket();
    echo.socket.on('message', (m, from) => echo.socket.send(Buffer.concat([Buffer.from('echo:'), m]), from.port, from.address));
    balancer = await boundSocket();
    balancer.socket.on('message', (m) => replies.push(m.toString()));
    const probe = await boundSocket();
    listenPort = probe.port;
    probe.socket.close();
    relay = new MmproxyUdpRelay(
      { name: 'dns', listen: [{ address: '127.0.0.1', port: listenPort }], allowedSources: ['127.0.0.0/8'], backend4: { address: '127.0.0.1', port: echo.port }, maxHeaderBytes: 512, upstreamMark: 2, idleTimeoutMs: 0, maxSessions: 16 },
      { sockets: new UnprivilegedSockets(), emit: (e) => events.push(e), flowEvents: true },
    );
    relay.start();
  });
  after(async () => {
    if (!stopped) await relay.stop();
    echo.socket.close();
    balancer.socket.close();
  });

  const send = async (client: Endpoint, payload: string): Promise<void> => {
    const header = encodeProxyHeaderV2({ command: 'proxy', transport: 'udp', addresses: { source: client, destination: ep('198.51.100.53', 53) } });
    await new Promise<void>((resolve, reject) => balancer.socket.send(Buffer.concat([header, Buffer.from(payload)]), listenPort, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  };
  const ofType = <T extends ProxyEvent['type']>(type: T): Extract<ProxyEvent, { type: T }>[] => events.filter((e): e is Extract<ProxyEvent, { type: T }> => e.type === type);

  it('reports the open with the balancer, the client, the destination and the backend; counts datagrams and bytes each way; reports the close with them', async () => {
    const client = ep('127.0.0.2', 41_001);
    await send(client, 'one');
    await until(() => replies.length, (n) => n === 1, 'the first echo');
    await send(client, 'two!');
    await until(() => replies.length, (n) => n === 2, 'the second echo');
    assert.deepEqual(replies, ['echo:one', 'echo:two!']);

    const opened = ofType('mmproxy.udp.open');
    assert.equal(opened.length, 1, 'one session for both datagrams');
    const open = opened[0]!;
    assert.deepEqual(open, { type: 'mmproxy.udp.open', listener: 'dns', id: open.id, balancer: ep('127.0.0.1', balancer.port), client, originalDestination: ep('198.51.100.53', 53), backend: ep('127.0.0.1', echo.port) });

    const [listed] = await until(() => relay.sessions(10), (s) => s[0]?.datagramsFromBackend === 2, 'both echoes counted');
    assert.deepEqual({ ...listed!, idleMs: 0 }, {
      id: open.id,
      balancer: ep('127.0.0.1', balancer.port),
      client,
      originalDestination: ep('198.51.100.53', 53),
      backend: ep('127.0.0.1', echo.port),
      datagramsFromClient: 2,
      datagramsFromBackend: 2,
      bytesFromClient: 7,
      bytesFromBackend: 7 + 2 * 'echo:'.length,
      idleMs: 0,
    });

    assert.equal(relay.closeSession(open.id), true);
    assert.equal(relay.closeSession(open.id), false, 'no longer in progress');
    const [close] = ofType('mmproxy.udp.close');
    assert.ok(close);
    assert.ok(close.durationMs >= 0);
    assert.deepEqual(
      { ...close, durationMs: 0 },
      { type: 'mmproxy.udp.close', listener: 'dns', id: open.id, balancer: ep('127.0.0.1', balancer.port), client, originalDestination: ep('198.51.100.53', 53), backend: ep('127.0.0.1', echo.port), datagramsFromClient: 2, datagramsFromBackend: 2, bytesFromClient: 7, bytesFromBackend: 17, durationMs: 0, reason: 'closed-by-operator' },
    );
    assert.equal(relay.counters.closed['closed-by-operator'], 1);
    assert.deepEqual(relay.sessions(10), []);
  });

  it('reports nothing while flow events are off (sessions go on); switched on, the next session and the close at stop are reported', async () => {
    events.length = 0;
    relay.setFlowEvents(false);
    await send(ep('127.0.0.2', 41_002), 'quiet');
    await until(() => replies.length, (n) => n === 3, 'the quiet echo');
    assert.deepEqual(events, []);
    assert.equal(relay.sessionCount, 1);

    relay.setFlowEvents(true);
    await send(ep('127.0.0.2', 41_003), 'loud');
    await until(() => replies.length, (n) => n === 4, 'the loud echo');
    assert.deepEqual(ofType('mmproxy.udp.open').map((e) => e.client.port), [41_003]);

    await relay.stop();
    stopped = true;
    // Both sessions end with the relay; the quiet one's close is reported too (events are on now), as on the TPROXY engines.
    assert.deepEqual(ofType('mmproxy.udp.close').map((e) => `${e.client.port} ${e.reason} ${e.datagramsFromClient}/${e.datagramsFromBackend}`).sort(), ['41002 stopped 1/1', '41003 stopped 1/1']);
  });
});

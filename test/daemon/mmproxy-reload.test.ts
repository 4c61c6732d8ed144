// A reload of the mmproxy listeners on loopback (no privileges: LOCAL headers relayed to a health
// target from this host's address): all or nothing, the listening socket handed over (never closed),
// flows in progress go on, counters go on, a bad change changes nothing, a removed entry drains.
// On each TCP engine: splice and uring (engine threads sharing the listening socket; uring falls
// back to splice where io_uring cannot run) and stream.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { MmproxySettings } from '../../src/core/config/sections/mmproxy.js';
import { MmproxyListeners } from '../../src/daemon/mmproxy.js';
import type { ProxyEvent } from '../../src/dataplane/events.js';
import { SocketApi } from '../../src/sys/socket.js';
import { until } from '../helpers/until.js';

const LOCAL_HEADER = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/** A connection through the listener to the echo health target: send `text`, read it back. */
class Flow {
  private readonly socket: net.Socket;
  private received = '';
  private waiting: (() => void) | undefined;
  readonly closed: Promise<void>;
  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => undefined);
    this.socket.write(LOCAL_HEADER);
    this.socket.on('data', (d: Buffer) => {
      this.received += d.toString();
      this.waiting?.();
    });
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }
  async echo(text: string): Promise<void> {
    const want = this.received + text;
    this.socket.write(text);
    const deadline = Date.now() + 5000;
    while (this.received !== want) {
      if (Date.now() > deadline) throw new Error(`no echo of ${text} (got ${JSON.stringify(this.received)})`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 200);
      });
    }
  }
  end(): Promise<void> {
    this.socket.end();
    return this.closed;
  }
}

for (const engine of ['splice', 'uring', 'stream'] as const) {
  describe(`mmproxy listeners: reload, ${engine} engine`, () => {
    const echo = net.createServer((s) => s.pipe(s));
    const taken = net.createServer();
    let echoPort: number;
    let takenPort: number;
    let port: number;
    let listeners: MmproxyListeners;
    const events: ProxyEvent[] = [];
    const flowEventTypes = (): string[] => events.filter((e) => e.type === 'mmproxy.local' || e.type === 'mmproxy.close').map((e) => e.type);
    const settings = (change: Partial<Omit<MmproxySettings, 'backend4' | 'backend6' | 'healthTarget'>> = {}): MmproxySettings => ({
      name: 'lb',
      protocol: 'tcp',
      maxSessions: 4096,
      listen: [{ address: '127.0.0.1', port }],
      allowedSources: ['127.0.0.0/8'],
      backend4: undefined,
      backend6: undefined,
      headerTimeoutMs: 1000,
      maxHeaderBytes: 512,
      healthTarget: { address: '127.0.0.1', port: echoPort },
      upstreamMark: 0,
      connectTimeoutMs: 2000,
      idleTimeoutMs: 0,
      ...change,
    });

    before(async () => {
      echoPort = await listen(echo);
      takenPort = await listen(taken);
      const probe = net.createServer();
      port = await listen(probe);
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      listeners = new MmproxyListeners({ sockets: new SocketApi(), emit: (e) => events.push(e), engine, threads: 2, flowEvents: false });
    });
    after(async () => {
      await listeners.stop();
      echo.close();
      taken.close();
    });

    let first: Flow;
    it('a changed entry takes over the listening socket: the flow in progress goes on, new flows come in, counters go on', async () => {
      await listeners.apply([settings()]);
      first = new Flow(port);
      await first.echo('one');
      const counters = listeners.counters().lb!;
      await listeners.apply([settings({ headerTimeoutMs: 2000 })]);
      assert.equal(listeners.status().listeners[0]?.name, 'lb');
      await first.echo('two');
      const second = new Flow(port);
      await second.echo('three');
      await second.end();
      assert.equal(listeners.counters().lb, counters, 'the same counters go on');
      // Without per-flow events, an engine thread reports its counters and connections once a second.
      await until(() => Promise.resolve(counters.headersLocal), (n) => n === 2, 5000, 'both health checks counted');
      await until(() => Promise.resolve(listeners.status().drainingConnections), (n) => n === 2, 5000, 'the first flow (both sides) finishing on the replaced entry');
    });

    it('per-flow events follow the flowEvents setting: none while off (counters move), switched on in place for the entries running', async () => {
      // The flow of the test above has closed, counted (a thread reports its counters once a second) but not reported.
      await until(() => Promise.resolve(listeners.counters().lb!.closed['done'] ?? 0), (n) => n >= 1, 5000, 'the closed flow counted');
      assert.deepEqual(flowEventTypes(), []);
      listeners.setFlowEvents(true);
      const flow = new Flow(port);
      await flow.echo('reported');
      await flow.end();
      await until(() => Promise.resolve(flowEventTypes()), (types) => types.includes('mmproxy.close'), 5000, 'the flow reported');
      assert.deepEqual(flowEventTypes(), ['mmproxy.local', 'mmproxy.close']);
      listeners.setFlowEvents(false);
    });

    it('a change with a taken address is refused whole: the running entry and its flows are as they were', async () => {
      await assert.rejects(listeners.apply([settings({ headerTimeoutMs: 3000, listen: [{ address: '127.0.0.1', port }, { address: '127.0.0.1', port: takenPort }] })]), new RegExp(`mmproxy lb: cannot listen on 127\\.0\\.0\\.1:${takenPort}`));
      await assert.rejects(listeners.apply([settings({ allowedSources: ['not-a-prefix'] })]));
      assert.deepEqual(
        listeners.status().listeners.map((l) => l.listen),
        [[{ address: '127.0.0.1', port }]],
      );
      await first.echo('four');
      const third = new Flow(port);
      await third.echo('five');
      await third.end();
    });

    it('a prepared change that is aborted (the daemon\'s reload failed) closes what it bound and changes nothing', async () => {
      const free = net.createServer();
      const freePort = await listen(free);
      await new Promise<void>((resolve) => free.close(() => resolve()));
      const change = await listeners.prepare([settings({ listen: [{ address: '127.0.0.1', port }, { address: '127.0.0.1', port: freePort }] })]);
      await change.abort();
      await assert.rejects(
        new Promise((resolve, reject) => net.connect(freePort, '127.0.0.1', () => resolve(undefined)).on('error', reject)),
        /ECONNREFUSED/,
      );
      const still = new Flow(port);
      await still.echo('six');
      await still.end();
    });

    it('a removed entry stops accepting and drains: its flows go on to their end, and its drain settles then (the daemon keeps its reply routing until)', async () => {
      const last = new Flow(port);
      await last.echo('on the entry removed');
      const before = listeners.status().listeners.map((l) => l.name);
      const change = await listeners.prepare([]);
      assert.deepEqual(change.leaving.map((l) => l.name), before);
      const drains = change.commit();
      assert.deepEqual(drains.map((d) => d.settings.name), before);
      let drained = false;
      void Promise.all(drains.map((d) => d.drained)).then(() => (drained = true));
      assert.deepEqual(listeners.status().listeners, []);
      await assert.rejects(
        new Promise((resolve, reject) => net.connect(port, '127.0.0.1', () => resolve(undefined)).on('error', reject)),
        /ECONNREFUSED/,
      );
      await first.echo('seven');
      await last.echo('eight');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(drained, false, 'the drain settles only when its last flow ended');
      await last.end();
      await Promise.all(drains.map((d) => d.drained));
      await first.end();
      const deadline = Date.now() + 5000;
      while (listeners.status().drainingConnections > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(listeners.status().drainingConnections, 0);
    });
  });
}

// The two thread engines of an mmproxy TCP entry, splice and uring, held to the same behaviour on
// loopback (no privileges: LOCAL headers relayed to a health target from this host): the bytes
// after the header (same segment or later), a header one byte at a time, 4 MiB both ways with a
// half-close, and each way a connection ends before relaying (refused header, header timeout, a
// FIN inside the header, a LOCAL header without a target, a health target that refuses), with
// the counters and events of each.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ProxyEvent } from '../../../src/dataplane/events.js';
import type { MmproxyCounters } from '../../../src/dataplane/mmproxy/counters.js';
import { MmproxySpliceRelay } from '../../../src/dataplane/mmproxy/splice-relay.js';
import type { MmproxyTcpConfig } from '../../../src/dataplane/mmproxy/tcp-relay.js';
import { hostIoUringSupport } from '../../../src/sys/io-uring.js';
import { SocketApi } from '../../../src/sys/socket.js';
import { until } from '../../helpers/until.js';

const LOCAL_V2 = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');

interface Outcome {
  readonly how: string;
  readonly data: Buffer;
}

/** Connect, send `chunks` (a delay before each after the first), half-close unless told; everything received and how it ended. */
function exchange(port: number, chunks: readonly Buffer[], options: { delayMs?: number; end?: boolean } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    const c = net.connect(port, '127.0.0.1', () => {
      void (async () => {
        for (const [i, chunk] of chunks.entries()) {
          if (i > 0 && options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
          if (c.destroyed) return;
          c.write(chunk);
        }
        if (options.end !== false) c.end();
      })();
    });
    c.setTimeout(10_000, () => c.destroy(new Error('timeout')));
    c.on('data', (d: Buffer) => received.push(d));
    c.on('error', (e: NodeJS.ErrnoException) => resolve({ how: e.code ?? e.message, data: Buffer.concat(received) }));
    c.on('end', () => {
      c.end();
      resolve({ how: 'end', data: Buffer.concat(received) });
    });
  });
}

const engines = hostIoUringSupport().available ? (['splice', 'uring'] as const) : (['splice'] as const);

for (const engine of engines) {
  describe(`mmproxy TCP entry on the ${engine} thread engine (loopback)`, () => {
    let echo: net.Server;
    let echoPort: number;
    let refusedPort: number;
    const events: ProxyEvent[] = [];
    let withTarget: MmproxySpliceRelay;
    let withoutTarget: MmproxySpliceRelay;
    let refusing: MmproxySpliceRelay;
    let ports: { withTarget: number; withoutTarget: number; refusing: number };

    const config = (name: string, healthTarget: number | undefined): MmproxyTcpConfig => ({
      name,
      listen: [{ address: '127.0.0.1', port: 0 }],
      allowedSources: ['127.0.0.0/8'],
      headerTimeoutMs: 400,
      maxHeaderBytes: 256,
      upstreamMark: 0,
      connectTimeoutMs: 2000,
      idleTimeoutMs: 0,
      ...(healthTarget !== undefined ? { healthTarget: { address: '127.0.0.1', port: healthTarget } } : {}),
    });

    before(async () => {
      echo = net.createServer((s) => s.pipe(s));
      await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
      echoPort = (echo.address() as net.AddressInfo).port;
      const gone = net.createServer();
      await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
      refusedPort = (gone.address() as net.AddressInfo).port;
      await new Promise<void>((resolve) => gone.close(() => resolve()));
      const deps = { sockets: new SocketApi(), emit: (e: ProxyEvent) => void events.push(e), threads: 2, engine, flowEvents: true };
      withTarget = new MmproxySpliceRelay(config('target', echoPort), deps);
      withoutTarget = new MmproxySpliceRelay(config('none', undefined), deps);
      refusing = new MmproxySpliceRelay(config('refusing', refusedPort), deps);
      ports = { withTarget: (await withTarget.start())[0]!.port, withoutTarget: (await withoutTarget.start())[0]!.port, refusing: (await refusing.start())[0]!.port };
    });
    after(async () => {
      await Promise.all([withTarget?.stop(), withoutTarget?.stop(), refusing?.stop()]);
      echo?.close();
    });

    const counted = (relay: MmproxySpliceRelay, ok: (c: MmproxyCounters) => boolean, what: string): Promise<MmproxyCounters> => until(() => Promise.resolve(relay.counters), ok, 5000, what);

    it('the bytes after the header, in its segment and after it: 4 MiB echoed back whole and in order, half-close passed both ways', async () => {
      const payload = randomBytes(4 * 1024 * 1024);
      const out = await exchange(ports.withTarget, [Buffer.concat([LOCAL_V2, Buffer.from('first')]), payload]);
      assert.equal(out.how, 'end');
      assert.equal(out.data.length, payload.length + 5);
      assert.ok(out.data.equals(Buffer.concat([Buffer.from('first'), payload])), 'the echo differs from what was sent');
      const c = await counted(withTarget, (x) => x.closed.done === 1, 'the flow closed as done');
      assert.equal(c.headersLocal, 1);
      assert.equal(c.bytesFromClient, payload.length + 5);
      assert.equal(c.bytesFromBackend, payload.length + 5);
    });

    it('a header one byte at a time, then the request: relayed, nothing lost', async () => {
      const bytes = [...LOCAL_V2].map((b) => Buffer.of(b));
      const out = await exchange(ports.withTarget, [...bytes, Buffer.from('ping')], { delayMs: 5 });
      assert.equal(out.how, 'end');
      assert.equal(out.data.toString(), 'ping');
    });

    const REFUSED = [
      { what: 'a wrong signature', chunks: [Buffer.from('GET / HTTP/1.1\r\n\r\n')], end: false, reason: 'bad-signature' },
      { what: 'a FIN inside the header', chunks: [LOCAL_V2.subarray(0, 7)], end: true, reason: 'truncated' },
      { what: 'a prefix, then nothing until the header timeout', chunks: [LOCAL_V2.subarray(0, 5)], end: false, reason: 'header-timeout' },
      { what: 'a FIN before any byte', chunks: [], end: true, reason: 'closed-before-header' },
    ];
    for (const bad of REFUSED) {
      it(`${bad.what}: reset, counted as ${bad.reason}, reported`, async () => {
        const before = withTarget.counters.rejected[bad.reason] ?? 0;
        const started = Date.now();
        const out = await exchange(ports.withTarget, bad.chunks, { end: bad.end });
        assert.equal(out.how, 'ECONNRESET');
        assert.equal(out.data.length, 0);
        if (bad.reason === 'header-timeout') assert.ok(Date.now() - started >= 350, `cut after ${Date.now() - started} ms`);
        await counted(withTarget, (c) => (c.rejected[bad.reason] ?? 0) === before + 1, `the ${bad.reason} refusal counted`);
        assert.ok(events.some((e) => e.type === 'mmproxy.reject' && e.reason === bad.reason && e.listener === 'target'));
      });
    }

    it('a LOCAL header without a health target: a clean close after the header, counted as local', async () => {
      const out = await exchange(ports.withoutTarget, [Buffer.concat([LOCAL_V2, Buffer.from('ignored')])], { end: false });
      assert.equal(out.how, 'end');
      assert.equal(out.data.length, 0);
      await counted(withoutTarget, (c) => c.headersLocal === 1, 'the health check counted');
      assert.deepEqual(withoutTarget.counters.connectErrors, {});
    });

    it('a health target that refuses: the client reset, counted as a connect error and a closed flow', async () => {
      const out = await exchange(ports.refusing, [Buffer.concat([LOCAL_V2, Buffer.from('x')])], { end: false });
      assert.equal(out.how, 'ECONNRESET');
      const c = await counted(refusing, (x) => x.connectErrors.ECONNREFUSED === 1, 'the connect error counted');
      assert.equal(c.closed.ECONNREFUSED, 1);
      assert.equal(c.active, 0);
    });
  });
}

// The dashboard over HTTP on a real loopback server: the page's files with a strict CSP, the API,
// the event stream (state, then changes only), and the rules for actions: POST, JSON, same
// origin, the token in its header; read-only without a configured token.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Dashboard, type DashboardSource } from '../../../src/daemon/dashboard/dashboard.js';
import { CONTENT_SECURITY_POLICY, dashboardHandler, hostAllowed, loadAssets, MAX_EVENT_STREAMS, originAllowed } from '../../../src/daemon/dashboard/http.js';
import type { DaemonStatus } from '../../../src/daemon/admin-protocol.js';
import { judgeReadiness } from '../../../src/daemon/readiness.js';
import { emptyTcpCounters } from '../../../src/dataplane/tcp/counters.js';
import { serveMetrics, type MetricsEndpoint } from '../../../src/sys/metrics-http.js';
import { openEventStream } from '../../helpers/event-stream.js';

const TOKEN = 'abcdefghijklmnop0123';
const client = { family: 4 as const, address: '198.51.100.10', port: 40000 };
const dest = { family: 4 as const, address: '203.0.113.20', port: 443 };

const STATUS = { state: 'running', pid: 1, version: 'test', node: 'v20', engine: 'splice', startedAt: '', uptimeSeconds: 0, listeners: [], rules: { managed: false }, flows: [] } as unknown as DaemonStatus;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function serve(token: string | undefined): Promise<{ endpoint: MetricsEndpoint; dashboard: Dashboard; closed: { id: number; pid?: number }[]; closedUdp: number[]; reloads: number[]; drains: boolean[] }> {
  const closed: { id: number; pid?: number }[] = [];
  const closedUdp: number[] = [];
  // UDP session 3 of listener web: its bytes grow at each snapshot, as a live session's do.
  let udpAsked = 0;
  const reloads: number[] = [];
  const drains: boolean[] = [];
  let drained = false;
  // The daemon's own judgement (readiness.ts), over a daemon whose only state is drained or not.
  const readiness = () => judgeReadiness({ state: 'running', drained, rules: { managed: false }, listeners: [{ name: 'web', health: { tcp: { accepting: true, workers: { running: 0, wanted: 0 } } } }] });
  const source: DashboardSource = {
    listeners: () => [
      {
        name: 'web',
        proxy: {
          counters: () => ({ tcp: emptyTcpCounters() }),
          snapshot: () => Promise.resolve({ flows: [{ id: 1, pid: 50, client, originalDestination: dest, bytesFromClient: 5, bytesFromServer: 6, ageMs: 1, connected: true }] }),
          closeTcpFlow: (id, pid) => {
            closed.push({ id, ...(pid !== undefined ? { pid } : {}) });
            return Promise.resolve(true);
          },
          udpSessions: (limit) => {
            udpAsked++;
            assert.equal(limit, 1000, 'bounded like the TCP snapshot');
            return Promise.resolve(closedUdp.includes(3) ? [] : [{ id: 3, client, originalDestination: dest, datagramsFromClient: udpAsked, datagramsFromServer: udpAsked, bytesFromClient: 10 * udpAsked, bytesFromServer: 20 * udpAsked, idleMs: 0 }]);
          },
          closeUdpSession: (id) => {
            const live = id === 3 && !closedUdp.includes(3);
            if (live) closedUdp.push(id);
            return Promise.resolve(live);
          },
        },
      },
    ],
    status: () => Promise.resolve(STATUS),
    explain: (r) => Promise.resolve({ text: `explained ${r.packet}`, json: { outcome: 'delivered', sni: r.sni } }),
    reload: () => {
      reloads.push(1);
      return Promise.resolve();
    },
    readiness: () => Promise.resolve(readiness()),
    drain: (on) => {
      drains.push(on);
      drained = on;
      return Promise.resolve(readiness());
    },
  };
  const dashboard = new Dashboard(source, { ...(token !== undefined ? { token } : {}), pushEveryMs: 20 });
  const endpoint = await serveMetrics({ host: '127.0.0.1', port: 0 }, { metrics: () => Promise.resolve({ contentType: 'text/plain', body: 'm 1\n' }), other: dashboardHandler(dashboard, await loadAssets()) }, () => undefined, 16);
  dashboard.start();
  return { endpoint, dashboard, closed, closedUdp, reloads, drains };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

describe('dashboard HTTP with a token', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  let port: number;
  before(async () => {
    s = await serve(TOKEN);
    port = s.endpoint.address.port;
    s.dashboard.sink({ type: 'tcp.accept', id: 1, pid: 50, client, originalDestination: dest, listener: 'web' });
  });
  after(async () => {
    s.dashboard.stop();
    await s.endpoint.close();
  });

  it('serves the page and its files with a strict Content-Security-Policy (no inline script), metrics still at /metrics', async () => {
    const page = await request(port, 'GET', '/');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-security-policy'], CONTENT_SECURITY_POLICY);
    assert.match(CONTENT_SECURITY_POLICY, /default-src 'none'/);
    assert.match(CONTENT_SECURITY_POLICY, /script-src 'self'(;|$)/);
    assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.doesNotMatch(page.body, /<script>|<script [^>]*>[^<]|\son[a-z]+=/i, 'no inline script or handler in the page');
    assert.equal((await request(port, 'GET', '/dashboard.js')).headers['content-type'], 'text/javascript; charset=utf-8');
    assert.doesNotMatch((await request(port, 'GET', '/dashboard.js')).body, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, 'server text never parsed as HTML');
    assert.equal((await request(port, 'GET', '/metrics')).body, 'm 1\n');
  });

  it('answers the state and the flows as JSON', async () => {
    const state = JSON.parse((await request(port, 'GET', '/api/state')).body) as { readOnly: boolean; flows: { key: string }[] };
    assert.equal(state.readOnly, false);
    assert.deepEqual(state.flows.map((f) => f.key), ['tcp/web/50/1']);
    assert.equal((await request(port, 'GET', '/api/nothing')).status, 404);
  });

  it('refuses actions without the token, with a wrong one, by GET, cross-origin, without JSON, and from a Host that is a name', async () => {
    const body = JSON.stringify({ key: 'tcp/web/50/1' });
    assert.equal((await request(port, 'POST', '/api/flows/close', JSON_HEADERS, body)).status, 401);
    assert.equal((await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': '' }, body)).status, 401);
    assert.equal((await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': `${TOKEN}x` }, body)).status, 403);
    assert.equal((await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN.replace('a', 'b') }, body)).status, 403);
    assert.equal((await request(port, 'GET', `/api/flows/close?key=tcp/web/50/1&token=${TOKEN}`)).status, 405);
    assert.equal((await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN, origin: 'http://evil.example' }, body)).status, 403);
    assert.equal((await request(port, 'POST', '/api/flows/close', { 'content-type': 'text/plain', 'x-tproxy-token': TOKEN }, body)).status, 415);
    assert.equal((await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN, host: 'rebind.example:9464' }, body)).status, 421);
    assert.deepEqual(s.closed, [], 'nothing was closed');
  });

  it('closes a flow with the token (same origin), and says when there is no such flow', async () => {
    const ok = await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN, origin: `http://127.0.0.1:${port}` }, JSON.stringify({ key: 'tcp/web/50/1' }));
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(s.closed, [{ id: 1, pid: 50 }]);
    const missing = await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN }, JSON.stringify({ key: 'tcp/web/50/2' }));
    assert.equal(missing.status, 404);
    assert.match(missing.body, /no flow/);
    assert.equal((await request(port, 'POST', '/api/reload', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN }, '{}')).status, 200);
    assert.equal(s.reloads.length, 1);
  });

  it('drains and undrains with the token: the answer, /api/readiness and the event stream say drained and why', async () => {
    type Readiness = { ready: boolean; drained: boolean; reasons: string[] };
    const events: { event: string; data: Readiness }[] = [];
    let onEvent = (): void => undefined;
    const req = openEventStream(port, (event, data) => {
      if (event === 'state') events.push({ event, data: (data as { readiness: Readiness }).readiness });
      if (event === 'readiness') events.push({ event, data: data as Readiness });
      onEvent();
    });
    const waitFor = (n: number): Promise<void> =>
      new Promise((resolve) => {
        onEvent = () => events.length >= n && resolve();
        onEvent();
      });
    try {
      await waitFor(1);
      assert.deepEqual(events[0], { event: 'state', data: { ready: true, drained: false, reasons: [] } });
      // Without the token, or with a wrong one: refused, nothing drained.
      assert.equal((await request(port, 'POST', '/api/drain', JSON_HEADERS, '{}')).status, 401);
      assert.equal((await request(port, 'POST', '/api/drain', { ...JSON_HEADERS, 'x-tproxy-token': `${TOKEN}x` }, '{}')).status, 403);
      assert.equal((await request(port, 'GET', '/api/drain')).status, 405);
      assert.deepEqual(s.drains, []);
      const drain = await request(port, 'POST', '/api/drain', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN, origin: `http://127.0.0.1:${port}` }, '{}');
      assert.equal(drain.status, 200, drain.body);
      const drained = JSON.parse(drain.body) as { ok: boolean; readiness: { ready: boolean; drained: boolean; reasons: string[] } };
      assert.equal(drained.ok, true);
      assert.equal(drained.readiness.ready, false);
      assert.equal(drained.readiness.drained, true);
      assert.match(drained.readiness.reasons.join('\n'), /drained on purpose/);
      assert.deepEqual(JSON.parse((await request(port, 'GET', '/api/readiness')).body), drained.readiness);
      await waitFor(2);
      assert.deepEqual(events[1], { event: 'readiness', data: drained.readiness });
      // Draining twice changes nothing the pages need to hear about.
      assert.equal((await request(port, 'POST', '/api/drain', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN }, '{}')).status, 200);
      const undrain = await request(port, 'POST', '/api/undrain', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN }, '{}');
      assert.equal(undrain.status, 200, undrain.body);
      assert.deepEqual((JSON.parse(undrain.body) as { readiness: unknown }).readiness, { ready: true, drained: false, reasons: [] });
      await waitFor(3);
      assert.deepEqual(events.slice(1).map((e) => e.data.drained), [true, false], 'one readiness event per change');
      assert.deepEqual(s.drains, [true, true, false]);
    } finally {
      req.destroy();
    }
  });

  it('UDP sessions: their bytes rise while they live (with a page connected), and the close action ends one', async () => {
    s.dashboard.sink({ type: 'udp.session.open', id: 3, client, originalDestination: dest, upstreamLocal: client, mapping: 'endpoint-dependent', listener: 'web' });
    const ups: number[] = [];
    let rose = (): void => undefined;
    const rising = new Promise<void>((resolve) => (rose = resolve));
    const req = openEventStream(port, (event, data) => {
      if (event !== 'flows') return;
      for (const c of data as { op: string; key: string; fields?: { bytesFromClient?: number } }[]) if (c.op === 'update' && c.key === 'udp/web/3' && c.fields?.bytesFromClient !== undefined) ups.push(c.fields.bytesFromClient);
      if (ups.length >= 2) rose();
    });
    try {
      await rising;
    } finally {
      req.destroy();
    }
    assert.ok(ups[1]! > ups[0]!, `bytes rise: ${ups.join(', ')}`);
    const listed = (JSON.parse((await request(port, 'GET', '/api/flows')).body) as { key: string; bytesFromClient: number }[]).find((f) => f.key === 'udp/web/3');
    assert.ok(listed && listed.bytesFromClient >= ups[1]!, 'the table holds the live bytes');
    assert.equal((await request(port, 'POST', '/api/flows/close', JSON_HEADERS, '{"key":"udp/web/3"}')).status, 401);
    assert.deepEqual(s.closedUdp, []);
    const ok = await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN }, '{"key":"udp/web/3"}');
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(s.closedUdp, [3]);
    const again = await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': TOKEN }, '{"key":"udp/web/3"}');
    assert.equal(again.status, 404, 'the loop no longer has it');
  });

  it('explains by POST without the token; a bad body is a 400 that says what to send', async () => {
    const r = await request(port, 'POST', '/api/explain', JSON_HEADERS, JSON.stringify({ packet: 'tcp 198.51.100.10:1 -> 203.0.113.20:80', sni: 'a.example' }));
    assert.deepEqual(JSON.parse(r.body), { ok: true, text: 'explained tcp 198.51.100.10:1 -> 203.0.113.20:80', json: { outcome: 'delivered', sni: 'a.example' } });
    const bad = await request(port, 'POST', '/api/explain', JSON_HEADERS, '{"sni": 3}');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /packet/);
    assert.equal((await request(port, 'POST', '/api/explain', JSON_HEADERS, 'not json')).status, 400);
  });

  it('streams the state once, then only changes', async () => {
    const events: { event: string; data: unknown }[] = [];
    let contentType: string | undefined;
    let seenAll = (): void => undefined;
    let failed = (_error: Error): void => undefined;
    const seen = new Promise<void>((resolve, reject) => {
      seenAll = resolve;
      failed = reject;
    });
    const req = openEventStream(
      port,
      (event, data) => {
        events.push({ event, data });
        if (event === 'state') s.dashboard.sink({ type: 'tcp.accept', id: 9, pid: 50, client, originalDestination: dest, listener: 'web' });
        if (events.some((e) => e.event === 'flows' && JSON.stringify(e.data).includes('tcp/web/50/9'))) seenAll();
      },
      (res) => (contentType = res.headers['content-type']),
    );
    req.on('error', (error) => failed(error));
    await seen;
    req.destroy();
    assert.equal(contentType, 'text/event-stream; charset=utf-8');
    assert.equal(events[0]?.event, 'state');
    const change = events.find((e) => e.event === 'flows')?.data as { op: string }[];
    assert.ok(change.every((c) => ['add', 'update', 'remove'].includes(c.op)), 'changes, not the whole table');
  });
});

describe('dashboard event streams', () => {
  it(`serves at most ${MAX_EVENT_STREAMS} at once: the next page gets 503 and what to do, /metrics still answers, a closed page frees its place`, async () => {
    const s = await serve(TOKEN);
    const port = s.endpoint.address.port;
    const open: http.ClientRequest[] = [];
    const stream = (): Promise<{ req: http.ClientRequest; status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/api/events', agent: false });
        req.on('response', (res) => {
          if (res.statusCode !== 200) {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ req, status: res.statusCode ?? 0, body }));
            return;
          }
          // Open once the state arrived: the dashboard counts it.
          res.once('data', () => resolve({ req, status: 200, body: '' }));
        });
        req.on('error', reject);
        req.end();
        open.push(req);
      });
    try {
      for (let i = 0; i < MAX_EVENT_STREAMS; i++) assert.equal((await stream()).status, 200);
      assert.equal(s.dashboard.connected, MAX_EVENT_STREAMS);
      const refused = await stream();
      assert.equal(refused.status, 503);
      assert.match(refused.body, new RegExp(`${MAX_EVENT_STREAMS} dashboard pages are open.*close one`));
      assert.equal((await request(port, 'GET', '/metrics')).status, 200, 'scrapes keep their connections');
      open[0]!.destroy();
      const deadline = Date.now() + 5000;
      while (s.dashboard.connected >= MAX_EVENT_STREAMS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal((await stream()).status, 200, 'a closed page frees its place');
    } finally {
      for (const req of open) req.destroy();
      s.dashboard.stop();
      await s.endpoint.close();
    }
  });
});

describe('dashboard HTTP without a token', () => {
  it('is read-only: every action is refused and says how to allow it', async () => {
    const s = await serve(undefined);
    try {
      const port = s.endpoint.address.port;
      const r = await request(port, 'POST', '/api/flows/close', { ...JSON_HEADERS, 'x-tproxy-token': 'anything-at-all-1234' }, '{"key":"tcp/web/50/1"}');
      assert.equal(r.status, 403);
      assert.match(r.body, /read-only: set dashboard.token/);
      assert.equal((await request(port, 'POST', '/api/reload', JSON_HEADERS, '{}')).status, 403);
      assert.equal((await request(port, 'POST', '/api/drain', JSON_HEADERS, '{}')).status, 403);
      assert.equal((await request(port, 'POST', '/api/undrain', JSON_HEADERS, '{}')).status, 403);
      assert.deepEqual(s.drains, []);
      assert.equal((JSON.parse((await request(port, 'GET', '/api/readiness')).body) as { ready: boolean }).ready, true);
      assert.equal((JSON.parse((await request(port, 'GET', '/api/state')).body) as { readOnly: boolean }).readOnly, true);
    } finally {
      s.dashboard.stop();
      await s.endpoint.close();
    }
  });
});

describe('dashboard request checks', () => {
  it('Host: addresses and localhost only; Origin: absent or this server', () => {
    for (const ok of ['127.0.0.1:9464', '[::1]:9464', 'localhost:9464', 'LOCALHOST', '10.0.0.1']) assert.equal(hostAllowed(ok), true, ok);
    for (const bad of [undefined, '', 'evil.example:9464', 'localhost.evil.example', '127.0.0.1.nip.io:80', '[::1', 'a b']) assert.equal(hostAllowed(bad), false, String(bad));
    assert.equal(originAllowed(undefined, '127.0.0.1:1'), true);
    assert.equal(originAllowed('http://127.0.0.1:1', '127.0.0.1:1'), true);
    assert.equal(originAllowed('http://127.0.0.1:2', '127.0.0.1:1'), false);
    assert.equal(originAllowed('null', '127.0.0.1:1'), false);
  });
});

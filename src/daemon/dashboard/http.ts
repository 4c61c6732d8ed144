/**
 * The dashboard over HTTP, on the metrics server: the page (three files shipped in web/), the JSON
 * API under /api/ and the event stream (server-sent events). docs/dashboard.md documents it.
 *
 * Security: every answer carries a Content-Security-Policy that allows only this origin's own
 * script and style (no inline script, no frames); the Host must be an address or localhost (a
 * DNS-rebinding page names itself by a name); actions are POST only, with a JSON body, the token
 * in the X-Tproxy-Token header (never a cookie: a cross-site request cannot carry it) and an
 * Origin, when the browser sends one, equal to this server's.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { isTproxyError } from '../../core/errors.js';
import type { ExplainRequest } from '../../core/model/explain-request.js';
import { METRICS_MAX_CONNECTIONS } from '../../sys/metrics-http.js';
import type { Dashboard } from './dashboard.js';

export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

export const TOKEN_HEADER = 'x-tproxy-token';

/** What the event stream may hold unsent for one page before it is cut off. */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/**
 * Event streams open at once. A stream holds its connection for as long as the page is open; the
 * metrics server's other connections stay for scrapes, probes and the pages' API requests.
 */
export const MAX_EVENT_STREAMS = Math.floor(METRICS_MAX_CONNECTIONS / 2);

/** The POST endpoints that change something: they need the token. */
const ACTIONS = new Set(['/api/flows/close', '/api/reload', '/api/drain', '/api/undrain']);
/** Every POST endpoint (a GET on one is told to POST). */
const POSTS = new Set([...ACTIONS, '/api/explain']);

/** Bodies of API requests are small (a packet, a flow key). */
const MAX_BODY_BYTES = 16 * 1024;

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'dashboard.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

/** The folder of the page's files in the package (web/, beside dist/). */
export const WEB_ROOT = new URL('../../../../web/', import.meta.url);

export async function loadAssets(root: URL = WEB_ROOT): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const [path, { file, type }] of Object.entries(ASSETS)) assets.set(path, { type, body: await readFile(new URL(file, root)) });
  return assets;
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, ...extra }).end(body);
}

function json(response: ServerResponse, status: number, value: unknown): void {
  send(response, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

function fail(response: ServerResponse, status: number, error: string): void {
  json(response, status, { ok: false, error });
}

/** The Host header names an address (v4, [v6]) or localhost, with an optional port. */
export function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return false;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(host);
  if (!m) return false;
  const name = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return name.toLowerCase() === 'localhost' || isIP(name) !== 0;
}

/** A browser's Origin, when sent, must be this server (scheme http, the same host and port). */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  return host !== undefined && origin === `http://${host}`;
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error(`the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('the body must be a JSON object');
  return value as Record<string, unknown>;
}

const optionalText = (body: Record<string, unknown>, key: string): string | undefined => {
  const v = body[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new Error(`"${key}" must be a string`);
  return v;
};

/** The request handler for everything but /metrics. */
export function dashboardHandler(dashboard: Dashboard, assets: ReadonlyMap<string, Asset>): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    void handle(dashboard, assets, request, response).catch((error: unknown) => {
      if (!response.headersSent) fail(response, 500, (error as Error).message);
      else response.destroy();
    });
  };
}

async function handle(dashboard: Dashboard, assets: ReadonlyMap<string, Asset>, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? '/').split('?')[0] ?? '/';
  const method = request.method ?? 'GET';
  const host = request.headers.host;
  if (!hostAllowed(host)) {
    fail(response, 421, 'the Host header must be an IP address or localhost (open the dashboard by its address)');
    return;
  }
  const asset = assets.get(path);
  if (asset) {
    if (method !== 'GET' && method !== 'HEAD') return fail(response, 405, 'GET only');
    send(response, 200, asset.type, method === 'HEAD' ? '' : asset.body);
    return;
  }
  if (method === 'GET') {
    switch (path) {
      case '/api/state':
        return json(response, 200, await dashboard.state());
      case '/api/flows':
        return json(response, 200, dashboard.table.list());
      case '/api/history':
        return json(response, 200, dashboard.history.samples());
      case '/api/readiness':
        return json(response, 200, await dashboard.readiness());
      case '/api/events':
        return events(dashboard, request, response);
    }
    if (path.startsWith('/api/')) return fail(response, POSTS.has(path) ? 405 : 404, POSTS.has(path) ? `${path} takes POST with a JSON body` : `no such endpoint: ${path} (see docs/dashboard.md)`);
    return fail(response, 404, `nothing at ${path}: the dashboard is at /`);
  }
  if (method !== 'POST') return fail(response, 405, 'GET for reading, POST for explain and the actions');
  // Every POST: JSON only (a cross-site form cannot send it without a preflight), from this origin.
  if (!originAllowed(request.headers.origin, host)) return fail(response, 403, `cross-origin request refused (Origin ${request.headers.origin ?? ''})`);
  if (!(request.headers['content-type'] ?? '').startsWith('application/json')) return fail(response, 415, 'send the body as application/json');
  if (ACTIONS.has(path)) {
    const token = request.headers[TOKEN_HEADER];
    if (dashboard.readOnly) return fail(response, 403, 'the dashboard is read-only: set dashboard.token in the configuration to allow actions');
    if (typeof token !== 'string' || token === '') return fail(response, 401, `actions need the token in the ${TOKEN_HEADER} header`);
    if (!dashboard.authorized(token)) return fail(response, 403, 'wrong token');
  }
  let body: Record<string, unknown>;
  try {
    body = await readJson(request);
  } catch (error) {
    return fail(response, 400, (error as Error).message);
  }
  switch (path) {
    case '/api/explain': {
      let explainRequest: ExplainRequest;
      try {
        const packet = optionalText(body, 'packet');
        if (packet === undefined) throw new Error('"packet" is missing: tcp SADDR:SPORT -> DADDR:DPORT [iif IF] ...');
        const sni = optionalText(body, 'sni');
        const hostName = optionalText(body, 'host');
        const listener = optionalText(body, 'listener');
        explainRequest = { packet, ...(sni !== undefined ? { sni } : {}), ...(hostName !== undefined ? { host: hostName } : {}), ...(listener !== undefined ? { listener } : {}) };
      } catch (error) {
        return fail(response, 400, (error as Error).message);
      }
      try {
        return json(response, 200, { ok: true, ...(await dashboard.explain(explainRequest)) });
      } catch (error) {
        return fail(response, isTproxyError(error, 'ERR_INVALID_ARGUMENT') ? 400 : 500, (error as Error).message);
      }
    }
    case '/api/flows/close': {
      const key = body.key;
      if (typeof key !== 'string') return fail(response, 400, '"key" must be the key of a flow (from /api/flows)');
      const result = await dashboard.closeFlow(key);
      return result.ok ? json(response, 200, result) : fail(response, result.status, result.error);
    }
    case '/api/reload': {
      const result = await dashboard.reload();
      return result.ok ? json(response, 200, result) : fail(response, result.status, result.error);
    }
    case '/api/drain':
    case '/api/undrain': {
      const result = await dashboard.drain(path === '/api/drain');
      return result.ok ? json(response, 200, result) : fail(response, result.status, result.error);
    }
  }
  return fail(response, 404, `no such endpoint: ${path} (see docs/dashboard.md)`);
}

/** The event stream: `state` once, then `flows` (changes), `sample` (a second of history) and `status`. */
async function events(dashboard: Dashboard, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (dashboard.connected >= MAX_EVENT_STREAMS) {
    return fail(response, 503, `${MAX_EVENT_STREAMS} dashboard pages are open, the most this server streams to at once (its other connections stay for scrapes and probes): close one`);
  }
  response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
  response.socket?.setNoDelay(true);
  // The stream has no end of its own: no request timeout applies to it.
  response.socket?.setTimeout(0);
  const bye = await dashboard.connect({
    send: (event, data) => {
      // A page that stopped reading (a stalled tab, a dead link) would make the daemon hold every
      // change for it: past the limit it is cut off; EventSource reconnects and gets the state anew.
      if (response.writableLength > MAX_BUFFERED_BYTES) {
        response.destroy();
        return;
      }
      response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
  });
  // Comments keep proxies and the browser from thinking the stream is dead.
  const keepAlive = setInterval(() => response.write(': keep-alive\n\n'), 15_000);
  keepAlive.unref();
  const done = (): void => {
    clearInterval(keepAlive);
    bye();
  };
  request.once('close', done);
  response.once('close', done);
}

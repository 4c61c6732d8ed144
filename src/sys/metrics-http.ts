/**
 * The metrics endpoint: a plain HTTP server that answers GET /metrics with whatever `render`
 * produces at that moment (nothing is collected between scrapes), and the probes a routing
 * daemon's health check or Kubernetes asks: /healthz (200 whenever the process answers) and
 * /readyz (200 when ready, 503 when not, the reasons in the body). Other paths go to
 * `pages.other` when given (the dashboard), else 404.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TproxyError } from '../core/errors.js';
import type { ListenAddress } from '../core/config/listen-address.js';

export interface MetricsPage {
  readonly contentType: string;
  readonly body: string;
}

/** What /readyz answers: its status code follows `ready`. */
export interface ReadyPage {
  readonly ready: boolean;
  readonly body: string;
}

export interface MetricsPages {
  readonly metrics: () => Promise<MetricsPage>;
  /** Absent: /readyz is not served (404). */
  readonly ready?: () => Promise<ReadyPage>;
  /** Every other path and method (the dashboard's page and API); absent: 404. */
  readonly other?: (request: IncomingMessage, response: ServerResponse) => void;
}

export interface MetricsEndpoint {
  readonly address: ListenAddress;
  close(): Promise<void>;
}

/** Connections served at once; more are closed as soon as accepted (the descriptor budget holds this many). */
export const METRICS_MAX_CONNECTIONS = 16;

const TEXT = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };

export async function serveMetrics(address: ListenAddress, pages: MetricsPages, onError: (error: Error) => void, maxConnections = METRICS_MAX_CONNECTIONS): Promise<MetricsEndpoint> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const own = path === '/metrics' || path === '/healthz' || (path === '/readyz' && pages.ready !== undefined);
    if (!own && pages.other) {
      pages.other(request, response);
      return;
    }
    const head = request.method === 'HEAD';
    if (request.method !== 'GET' && !head) {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      response.writeHead(200, TEXT).end(head ? undefined : 'ok\n');
      return;
    }
    if (path === '/readyz' && pages.ready) {
      pages.ready().then(
        (page) => response.writeHead(page.ready ? 200 : 503, TEXT).end(head ? undefined : page.body),
        (error: unknown) => {
          onError(error as Error);
          response.writeHead(503, TEXT).end(head ? undefined : `not ready\n- the readiness check failed: ${(error as Error).message}\n`);
        },
      );
      return;
    }
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`tproxy: metrics are at /metrics, liveness at /healthz${pages.ready ? ', readiness at /readyz' : ''}\n`);
      return;
    }
    pages.metrics().then(
      (page) => response.writeHead(200, { 'content-type': page.contentType }).end(head ? undefined : page.body),
      (error: unknown) => {
        onError(error as Error);
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`tproxy: collecting metrics failed: ${(error as Error).message}\n`);
      },
    );
  });
  server.maxConnections = maxConnections;
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const hint = error.code === 'EADDRINUSE' ? 'another program listens there: choose another --metrics-address' : error.code === 'EADDRNOTAVAIL' ? 'no interface of this host has that address' : error.code === 'EACCES' ? 'ports below 1024 need CAP_NET_BIND_SERVICE' : '';
      reject(new TproxyError(error.code === 'EADDRINUSE' ? 'ERR_ADDRESS_IN_USE' : error.code === 'EACCES' ? 'ERR_PRIVILEGE' : 'ERR_SYSCALL', `metrics endpoint ${address.host}:${address.port}: ${error.code ?? error.message}${hint ? `: ${hint}` : ''}`, { call: 'listen', errno: error.code }));
    });
    server.listen({ host: address.host, port: address.port, exclusive: true }, resolve);
  });
  server.on('error', onError);
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

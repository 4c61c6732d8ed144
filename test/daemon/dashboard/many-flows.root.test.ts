// The page with 10,000 flows in progress: the server sends the table once and then changes, the
// page keeps only the rows in view in the DOM, and filtering, sorting and live changes stay quick.
// A dashboard served in this process on loopback (fed synthetic flow events: no traffic, no
// kernel change), chromium headless in this namespace (root: chromium runs --no-sandbox as in the
// other browser test). Screenshots on failure go to a temp dir named in the failure.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { DaemonStatus } from '../../../src/daemon/admin-protocol.js';
import { Dashboard } from '../../../src/daemon/dashboard/dashboard.js';
import { dashboardHandler, loadAssets } from '../../../src/daemon/dashboard/http.js';
import { emptyTcpCounters } from '../../../src/dataplane/tcp/counters.js';
import { serveMetrics, type MetricsEndpoint } from '../../../src/sys/metrics-http.js';
import { CHROMIUM_SKIP, openChromium, poll, type ChromiumPage } from '../../helpers/chromium.js';

const FLOWS = 10_000;
const STATUS = { state: 'running', pid: 1, version: 'test', node: 'v20', engine: 'splice', startedAt: '', uptimeSeconds: 0, listeners: [], rules: { managed: false }, flows: [] } as unknown as DaemonStatus;
const READY = { ready: true, drained: false, reasons: [] };

const endpointOf = (i: number): { family: 4; address: string; port: number } => ({ family: 4, address: `198.51.100.${(i % 250) + 1}`, port: 10_000 + i });
const destOf = (i: number): { family: 4; address: string; port: number } => ({ family: 4, address: `203.0.113.${(i % 200) + 1}`, port: 443 });

describe('dashboard with 10,000 flows in chromium (root)', { skip: CHROMIUM_SKIP }, () => {
  let endpoint: MetricsEndpoint;
  let dashboard: Dashboard;
  let browser: ChromiumPage;
  let page: Page;

  before(async () => {
    dashboard = new Dashboard(
      { listeners: () => [{ name: 'web', proxy: { counters: () => ({ tcp: emptyTcpCounters() }), snapshot: () => Promise.resolve({ flows: [] }), closeTcpFlow: () => Promise.resolve(false), udpSessions: () => Promise.resolve([]), closeUdpSession: () => Promise.resolve(false) } }], status: () => Promise.resolve(STATUS), explain: () => Promise.reject(new Error('not here')), reload: () => Promise.resolve(), readiness: () => Promise.resolve(READY), drain: () => Promise.resolve(READY) },
      { pushEveryMs: 50 },
    );
    for (let i = 1; i <= FLOWS; i++) {
      dashboard.sink({ type: 'tcp.accept', id: i, pid: 7, client: endpointOf(i), originalDestination: destOf(i), listener: 'web' });
      dashboard.sink({ type: 'tcp.route', id: i, pid: 7, originalDestination: destOf(i), outbound: 'direct', name: `host${i}.example`, listener: 'web' });
    }
    endpoint = await serveMetrics({ host: '127.0.0.1', port: 0 }, { metrics: () => Promise.resolve({ contentType: 'text/plain', body: '' }), other: dashboardHandler(dashboard, await loadAssets()) }, () => undefined, 16);
    dashboard.start();
    browser = await openChromium('dashboard-many');
    page = browser.page;
  });

  after(async () => {
    await browser?.close();
    dashboard?.stop();
    await endpoint?.close();
  });

  const step = (name: string, body: () => Promise<void>): Promise<void> => browser.step(name, body);

  it('renders only the rows in view, filters, sorts, scrolls and follows changes', () =>
    step('many', async () => {
      await page.goto(`http://127.0.0.1:${endpoint.address.port}/`);
      await page.locator(`#flow-count:text-is("(${FLOWS})")`).waitFor();
      const rows = await page.locator('#flow-rows .row.flow').count();
      assert.ok(rows > 0 && rows < 100, `${rows} rows in the DOM for ${FLOWS} flows`);
      // Filtering: one flow by its name (host1234.example also matches host12345...: none above 10,000).
      await page.fill('#filter', 'host1234.example');
      await page.locator('#flow-count:text-is("(1 of 10000)")').waitFor();
      assert.equal(await page.locator('#flow-rows .row.flow span.name').first().textContent(), 'host1234.example');
      await page.fill('#filter', '');
      // Sorting by client, then scrolling to the end shows the last rows, still few in the DOM.
      await page.click('#flow-head [data-sort="client"]');
      const firstKey = await page.locator('#flow-rows .row.flow').first().getAttribute('data-key');
      await page.locator('#flow-viewport').hover();
      await page.mouse.wheel(0, FLOWS * 30);
      await poll('the rows at the end are rendered', async () => (await page.locator('#flow-rows .row.flow').first().getAttribute('data-key')) !== firstKey);
      assert.ok((await page.locator('#flow-rows .row.flow').count()) < 100);
      // Changes: 2,000 flows end and 1 starts; the count follows without a reload of the page.
      for (let i = 1; i <= 2000; i++) dashboard.sink({ type: 'tcp.close', id: i, pid: 7, client: endpointOf(i), originalDestination: destOf(i), bytesFromClient: 1, bytesFromServer: 1, durationMs: 1, reason: 'done', listener: 'web' });
      dashboard.sink({ type: 'tcp.accept', id: 20_001, pid: 7, client: endpointOf(1), originalDestination: destOf(1), listener: 'web' });
      await page.locator(`#flow-count:text-is("(${FLOWS - 2000 + 1})")`).waitFor();
      // A filter over them all: the count and the rows follow, the DOM stays small.
      await page.fill('#filter', '203.0.113.7:');
      await page.locator('#flow-count:has-text(" of ")').waitFor();
      assert.ok((await page.locator('#flow-rows .row.flow').count()) < 100);
      assert.ok((await page.locator('#flow-rows .row.flow span.dest').allTextContents()).every((d) => d === '203.0.113.7:443'));
    }));
});

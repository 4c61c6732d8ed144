// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core, run
// inside the lab router's namespace (ip netns exec) against `tproxy run` with the dashboard on
// loopback there. The lab relays TCP flows (two trickling, one held), a UDP session and a session of
// an mmproxy UDP entry; the page must list them with their original destinations and rising bytes
// (the UDP sessions' while they live), draw the chart, explain a
// packet as `tproxy explain --json` does, close a flow and drain only with the token, keep a strict CSP and
// show names from the network as text. On a failure each test saves a screenshot to a temp dir
// named in the failure.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { LAB_ADDRESSES, Lab, type SpawnedProcess } from '../../../src/lab/topology.js';
import { startProxy } from '../../helpers/lab-flows.js';
import { CHROMIUM, CHROMIUM_SKIP, openChromium, poll, type ChromiumPage } from '../../helpers/chromium.js';
import { AGENT, BIN, SNI_CLIENT, TCP_PEER, UDP_PEERS } from '../../helpers/paths.js';
import { encodeProxyHeaderV2 } from '../../../src/core/proxy-protocol/v2.js';

const TOKEN = 'dashboard-test-token-0123456789';
const PORT = 9470;
const URL_ = `http://127.0.0.1:${PORT}/`;
const server = LAB_ADDRESSES.server.ipv4;
const client = LAB_ADDRESSES.client.ipv4;
/** The mmproxy UDP entry's address (the router, client side) and the client its balancer's header names. */
const MMPROXY = { address: LAB_ADDRESSES.routerClientSide.ipv4, port: 8553 };
const MMPROXY_CLIENT = { family: 4 as const, address: '192.0.2.60', port: 41060 };

const CONFIG = `listeners:
  - name: web
    port: 8100
    intercept: [tcp:80, tcp:81, tcp:82, tcp:443, udp:80]
routes:
  - { name: named, outbound: direct, names: [allowed.example] }
rules: { table: tproxy_dash, routeTable: 133, rulePriority: 9133 }
tcp: { workers: 1 }
metrics: { listen: "127.0.0.1:${PORT}" }
dashboard: { enabled: true, token: ${TOKEN} }
mmproxy:
  - name: dns
    protocol: udp
    listen: ["${MMPROXY.address}:${MMPROXY.port}"]
    allowedSources: [${client}/32]
    backend4: "${server}:80"
`;

describe('dashboard in chromium (root)', { skip: CHROMIUM_SKIP }, () => {
  let lab: Lab;
  let dir: string;
  let configFile: string;
  let browser: ChromiumPage;
  let page: Page;
  const trickles: Promise<unknown>[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-dashboard-'));
    lab = await Lab.create();
    const echo = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', '80']);
    await new JsonLines<{ event: string }>(echo.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'echo server on 80');
    const tls = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', '443']);
    await new JsonLines<{ event: string }>(tls.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'echo server on 443');
    for (const port of ['81', '82']) {
      const peer = lab.spawn('server', [process.execPath, TCP_PEER, 'server', '--port', port]);
      await new JsonLines<{ event: string }>(peer.child.stdout!).waitFor((l) => l.event === 'ready', 30_000, `tcp peer on ${port}`);
    }
    configFile = join(dir, 'tproxy.yaml');
    writeFileSync(configFile, CONFIG);
    await startProxy(lab, ['--config', configFile]);
    // Chromium in the router's namespace: ip netns exec execs it (same pid, so playwright's
    // pipe and its kill reach the browser itself).
    const wrapper = join(dir, 'chromium-in-router');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${lab.namespace('router')} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    browser = await openChromium('dashboard', wrapper);
    page = browser.page;
  });

  after(async () => {
    await browser?.close();
    await Promise.allSettled(trickles);
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const step = (name: string, body: () => Promise<void>): Promise<void> => browser.step(name, body);

  const rowSelector = (dest: string, transport = 'tcp'): string => `#flow-rows .row.flow[data-key^="${transport}/"]:has(span.dest:text-is("${dest}"))`;

  it('loads with a strict CSP that blocks injected inline script, and goes live', () =>
    step('load', async () => {
      const response = await page.goto(URL_);
      const csp = response?.headers()['content-security-policy'] ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      await page.locator('#connection:text-is("live")').waitFor();
      // An inline script added to the page: the CSP must keep it from running (and eval too).
      await page.addScriptTag({ content: 'window.__inline = 1' }).catch(() => undefined);
      await page.locator('#filter').fill('x');
      await page.locator('#filter').fill('');
      const inline = await page.evaluate(() => (globalThis as { __inline?: number }).__inline);
      assert.equal(inline, undefined, 'inline script ran despite the CSP');
    }));

  it('lists TCP and UDP flows with their original destinations, bytes rising, and draws the chart', () =>
    step('flows', async () => {
      for (let i = 0; i < 2; i++) trickles.push(lab.run('client', [process.execPath, TCP_PEER, 'client', 'trickle', server, '81', '600'], { timeoutMs: 120_000, check: false }));
      const udp = await lab.run('client', [process.execPath, AGENT, 'probe', 'udp', server, '80', 'dash', '--timeout-ms', '10000'], { check: false });
      assert.match(udp.stdout, /"ok":true/, udp.stdout);
      await page.locator(rowSelector(`${server}:81`)).nth(1).waitFor();
      await page.locator(rowSelector(`${server}:80`, 'udp')).first().waitFor();
      const first = Number(await page.locator(rowSelector(`${server}:81`)).first().getAttribute('data-up'));
      await poll('the bytes of a trickling flow rise', async () => (await Promise.all((await page.locator(rowSelector(`${server}:81`)).all()).map(async (r) => Number(await r.getAttribute('data-up'))))).some((up) => up > first));
      await poll('the chart draws a line that is not flat', async () => {
        const points = ((await page.getAttribute('#line-up', 'points')) ?? '').trim().split(/\s+/).filter(Boolean);
        return points.length >= 3 && new Set(points.map((p) => p.split(',')[1])).size > 1;
      });
      const sources = await page.locator(`${rowSelector(`${server}:81`)} span:nth-child(3)`).allTextContents();
      assert.ok(sources.every((s) => s.startsWith(`${client}:`)), sources.join(', '));
    }));

  it('explains a packet as `tproxy explain --json` does', () =>
    step('explain', async () => {
      const packet = `tcp ${client}:40000 -> ${server}:80 iif to-client syn`;
      await page.fill('#explain-packet', packet);
      await page.fill('#explain-sni', '');
      await page.fill('#explain-listener', '');
      await page.click('#explain-form button[type=submit]');
      await poll('the explanation arrives', async () => ((await page.getAttribute('#explain-output', 'data-json')) ?? '') !== '');
      const fromPage = JSON.parse((await page.getAttribute('#explain-output', 'data-json')) ?? '{}') as Record<string, unknown>;
      const cli = await lab.run('router', [process.execPath, BIN, 'explain', '--json', '--config', configFile, ...packet.split(' ')]);
      const fromCli = JSON.parse(cli.stdout) as Record<string, unknown>;
      assert.deepEqual(fromPage, fromCli);
      assert.equal((fromPage.outcome as { kind: string }).kind, 'delivered');
      assert.match((await page.textContent('#explain-output')) ?? '', /delivered|socket/);
    }));

  it('closes a flow only with the right token: refused without and with a wrong one, reset with it', () =>
    step('close', async () => {
      const hold = lab.run('client', [process.execPath, TCP_PEER, 'client', 'hold', server, '82', '90000'], { timeoutMs: 120_000, check: false });
      const row = page.locator(rowSelector(`${server}:82`)).first();
      await row.waitFor();
      await page.fill('#token', '');
      await row.locator('button.close').click();
      await page.locator('#action-result:has-text("not closed: actions need the token")').waitFor();
      await page.fill('#token', `${TOKEN}-wrong`);
      await row.locator('button.close').click();
      await page.locator('#action-result:has-text("not closed: wrong token")').waitFor();
      assert.equal(await page.locator(rowSelector(`${server}:82`)).count(), 1, 'the flow is still there');
      await page.fill('#token', TOKEN);
      await row.locator('button.close').click();
      const result = JSON.parse((await hold).stdout.trim().split('\n').pop() ?? '{}') as { how: string };
      assert.equal(result.how, 'reset', 'the client saw its flow reset');
      await page.locator(rowSelector(`${server}:82`)).waitFor({ state: 'detached' });
    }));

  it('shows the bytes of a UDP session while it lives, and closes it with the token (counted as closed by the operator)', () =>
    step('udp', async () => {
      // The probe's session (one datagram each way) lives until udp.idleTimeoutMs: its bytes are
      // on the page before it ends.
      const row = page.locator(rowSelector(`${server}:80`, 'udp')).first();
      await poll('the UDP session shows its bytes while it lives', async () => Number(await row.getAttribute('data-up')) > 0 && Number(await row.getAttribute('data-down')) > 0);
      const key = (await row.getAttribute('data-key')) ?? '';
      await page.fill('#token', TOKEN);
      await row.locator('button.close').click();
      await page.locator(`#action-result:text-is("closed ${key}")`).waitFor();
      await page.locator(`#flow-rows .row.flow[data-key="${key}"]`).waitFor({ state: 'detached' });
      const state = await page.evaluate(() => fetch('/api/state').then((r) => r.json() as Promise<{ status: { listeners: { counters: { udp?: { sessionsClosedByOperator: number } } }[] } }>));
      assert.equal(state.status.listeners[0]?.counters.udp?.sessionsClosedByOperator, 1);
    }));

  it('lists a session of an mmproxy UDP entry (route mmproxy, outbound its backend) with its bytes, and closes it with the token', () =>
    step('mmproxy', async () => {
      // The balancer (the client namespace) sends one datagram behind a PROXY v2 header naming MMPROXY_CLIENT.
      const header = encodeProxyHeaderV2({ command: 'proxy', transport: 'udp', addresses: { source: MMPROXY_CLIENT, destination: { family: 4, ...MMPROXY } } });
      const sent = await lab.run('client', [process.execPath, UDP_PEERS, 'send', MMPROXY.address, String(MMPROXY.port), '1', Buffer.concat([header, Buffer.from('mm')]).toString('hex')]);
      assert.equal((JSON.parse(sent.stdout.trim().split('\n').pop() ?? '{}') as { replies?: string[] }).replies?.length, 1, sent.stdout);
      const row = page.locator('#flow-rows .row.flow[data-key^="mmproxy-udp/dns/"]').first();
      await row.waitFor();
      const cells = await row.locator('span').allTextContents();
      assert.deepEqual(cells.slice(0, 7), ['udp', 'dns', '192.0.2.60:41060', `${MMPROXY.address}:${MMPROXY.port}`, '', 'mmproxy', `backend ${server}:80`]);
      await poll('the mmproxy session shows its bytes while it lives', async () => Number(await row.getAttribute('data-up')) === 2 && Number(await row.getAttribute('data-down')) > 0);
      const key = (await row.getAttribute('data-key')) ?? '';
      await page.fill('#token', TOKEN);
      await row.locator('button.close').click();
      await page.locator(`#action-result:text-is("closed ${key}")`).waitFor();
      await page.locator(`#flow-rows .row.flow[data-key="${key}"]`).waitFor({ state: 'detached' });
      const state = await page.evaluate(() => fetch('/api/state').then((r) => r.json() as Promise<{ status: { mmproxy?: { listeners: { counters: { closed: Record<string, number> } }[] } } }>));
      assert.equal(state.status.mmproxy?.listeners[0]?.counters.closed['closed-by-operator'], 1);
    }));

  it('drains and undrains from the page with the token: the header, the reasons and /readyz follow', () =>
    step('drain', async () => {
      const readyz = (): Promise<number> => page.evaluate(() => fetch('/readyz').then((r) => r.status));
      await page.locator('#readiness:text-is("ready")').waitFor();
      await page.fill('#token', `${TOKEN}-wrong`);
      await page.click('#drain');
      await page.locator('#action-result:has-text("drain: wrong token")').waitFor();
      assert.equal(await readyz(), 200, 'a refused drain left the gateway ready');
      await page.fill('#token', TOKEN);
      await page.click('#drain');
      await page.locator('#readiness:text-is("drained")').waitFor();
      await page.locator('#readiness-reasons li:has-text("drained on purpose")').waitFor();
      assert.equal(await readyz(), 503);
      assert.equal(await page.textContent('#drain'), 'undrain');
      await page.click('#drain');
      await page.locator('#readiness:text-is("ready")').waitFor();
      assert.equal(await page.locator('#readiness-panel').isHidden(), true);
      assert.equal(await readyz(), 200);
    }));

  it('shows names from the network and the explain form as text: an SNI with <script> runs nothing', () =>
    step('escape', async () => {
      const evil = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';
      const sni = lab.spawn('client', [process.execPath, SNI_CLIENT, server, '443', evil]);
      await new JsonLines<{ event: string }>(sni.child.stdout!).waitFor((l) => l.event === 'sent', 10_000, 'ClientHello sent');
      await page.locator(rowSelector(`${server}:443`)).first().waitFor();
      await page.fill('#explain-packet', `tcp ${client}:40001 -> ${server}:443 iif to-client syn`);
      await page.fill('#explain-sni', evil);
      await page.click('#explain-form button[type=submit]');
      await page.locator('#explain-output:has-text("not a DNS name")').waitFor();
      const seen = {
        xss: await page.evaluate(() => (globalThis as { __xss?: number }).__xss),
        scripts: await page.locator('script:has-text("__xss")').count(),
        images: await page.locator('img').count(),
        output: (await page.textContent('#explain-output')) ?? '',
        outputChildren: await page.locator('#explain-output > *').count(),
      };
      assert.equal(seen.xss, undefined);
      assert.equal(seen.scripts, 0, 'no script element made of the name');
      assert.equal(seen.images, 0);
      assert.equal(seen.outputChildren, 0);
      assert.ok(seen.output.includes('<script>window.__xss=1</script>'), seen.output);
      // The data plane never takes such bytes for a name: the flow is listed without one.
      assert.equal(await page.locator(`${rowSelector(`${server}:443`)} span.name`).first().textContent(), '');
      killQuietly(sni);
    }));
});

function killQuietly(p: SpawnedProcess): void {
  try {
    p.child.kill('SIGTERM');
  } catch {
    // already gone
  }
}

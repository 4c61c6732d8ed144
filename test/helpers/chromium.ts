/**
 * Debian's chromium, headless, driven by playwright-core, for the dashboard's browser tests: a
 * page with a fresh profile, steps that save a screenshot when they fail (to a temp dir named in
 * the failure, kept then), and a poll for what the page reaches by itself.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** The `skip` of a describe that needs chromium: false when it is there, else why not. */
export const CHROMIUM_SKIP: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} missing: bash scripts/setup.sh installs it`;

export interface ChromiumPage {
  readonly page: Page;
  /** Run a step; on failure save a screenshot and name it in the error. */
  step(name: string, body: () => Promise<void>): Promise<void>;
  /** Close the browser and remove its profile, and the screenshots unless a step failed. */
  close(): Promise<void>;
}

/** `executablePath`: chromium, or a wrapper that runs it elsewhere (in a lab namespace). */
export async function openChromium(name: string, executablePath = CHROMIUM): Promise<ChromiumPage> {
  const profile = mkdtempSync(join(tmpdir(), `tproxy-${name}-profile-`));
  const shots = mkdtempSync(join(tmpdir(), `tproxy-${name}-shots-`));
  let failed = false;
  const removeDirs = (): void => {
    rmSync(profile, { recursive: true, force: true });
    if (!failed) rmSync(shots, { recursive: true, force: true });
  };
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60_000,
    });
  } catch (error) {
    removeDirs();
    throw error;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  return {
    page,
    async step(stepName, body) {
      try {
        await body();
      } catch (error) {
        failed = true;
        const file = join(shots, `${stepName}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
        throw new Error(`${(error as Error).message}\n(screenshot: ${file})`, { cause: error });
      }
    },
    async close() {
      await context.close().catch(() => undefined);
      removeDirs();
    },
  };
}

/** Wait for a condition the page reaches by itself (at most timeoutMs), checking every 200 ms. */
export async function poll(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

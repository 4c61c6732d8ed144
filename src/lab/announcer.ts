/**
 * The link between a gateway's health and the routing daemon (run in the gateway's namespace):
 * while GET URL answers 200 (tproxy's /readyz), the route is in kernel table TABLE, which BIRD
 * learns and announces over BGP; when it does not (not ready, drained, or nobody answers within
 * the timeout), the route is deleted and BIRD withdraws the announcement. This is the pattern of
 * anycast health checkers (exabgp's healthcheck, anycast-healthchecker) in a few lines.
 *
 *   announcer --url URL --table N --route "PREFIX via ADDRESS" [--interval-ms 100] [--timeout-ms 300]
 *
 * Prints {"event":"announce"|"withdraw","at":ms since epoch,"why":...} at each change. Runs until
 * killed (the lab kills it by pid); the route it added goes when its namespace goes.
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { url: { type: 'string' }, table: { type: 'string' }, route: { type: 'string' }, 'interval-ms': { type: 'string', default: '100' }, 'timeout-ms': { type: 'string', default: '300' } } });
const url = values.url ?? '';
const table = values.table ?? '';
const route = (values.route ?? '').split(/\s+/).filter(Boolean);
if (!url || !/^\d+$/.test(table) || route.length === 0) {
  process.stderr.write('usage: announcer --url URL --table N --route "PREFIX via ADDRESS"\n');
  process.exit(2);
}
const intervalMs = Number(values['interval-ms']);
const timeoutMs = Number(values['timeout-ms']);

async function ready(): Promise<{ ok: boolean; why: string }> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await response.text();
    return { ok: response.status === 200, why: `${response.status} ${body.split('\n').slice(0, 3).join(' ')}`.trim() };
  } catch (error) {
    return { ok: false, why: (error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message };
  }
}

let announced: boolean | undefined;
for (;;) {
  const { ok, why } = await ready();
  if (ok !== announced) {
    try {
      execFileSync('ip', ok ? ['route', 'replace', ...route, 'table', table] : ['route', 'del', route[0] as string, 'table', table], { stdio: 'ignore' });
    } catch {
      // Deleting a route that is not there (the first check failing) is fine.
    }
    announced = ok;
    process.stdout.write(`${JSON.stringify({ event: ok ? 'announce' : 'withdraw', at: Date.now(), why })}\n`);
  }
  await new Promise((r) => setTimeout(r, intervalMs));
}
